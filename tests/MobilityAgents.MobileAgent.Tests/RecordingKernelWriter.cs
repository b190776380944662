using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.Reconciler;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>
/// TESTS ONLY. A kernel writer that programs nothing and records every desired state the agent
/// asks for, in order (null = tear everything down). This host has no ipip module; the real
/// tunnel programming is the reconciler's, tested in the kernel VM.
/// </summary>
public sealed class RecordingKernelWriter : IKernelWriter
{
    private readonly Lock _lock = new();
    private readonly List<MobileAgentState?> _applied = [];

    /// <summary>Every Apply so far, in order.</summary>
    public IReadOnlyList<MobileAgentState?> Applied
    {
        get
        {
            lock (_lock)
            {
                return [.. _applied];
            }
        }
    }

    /// <summary>What the kernel would hold now: the last Apply (null before any, or after a teardown).</summary>
    public MobileAgentState? Current
    {
        get
        {
            lock (_lock)
            {
                return _applied.Count > 0 ? _applied[^1] : null;
            }
        }
    }

    public KernelOutcome Apply(MobileAgentState? desired)
    {
        lock (_lock)
        {
            _applied.Add(desired);
        }

        return KernelOutcome.Done;
    }

    public override string ToString() => string.Join(Environment.NewLine, Applied.Select((s, i) => $"  {i}: {s?.ToString() ?? "(teardown)"}"));
}
