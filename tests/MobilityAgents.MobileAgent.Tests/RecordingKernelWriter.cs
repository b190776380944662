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

    /// <summary>How long a write of a tunnel (not a teardown) takes, like a slow kernel in a loaded VM; zero by default.</summary>
    public TimeSpan SlowApply { get; init; }

    /// <summary>Kernel writes under way now (more than one at a time is a bug in the agent).</summary>
    public int InProgress => Volatile.Read(ref _inProgress);

    /// <summary>Whether two writes ever overlapped.</summary>
    public bool Overlapped { get; private set; }

    private int _inProgress;

    public KernelOutcome Apply(MobileAgentState? desired)
    {
        if (Interlocked.Increment(ref _inProgress) > 1)
        {
            Overlapped = true;
        }

        try
        {
            if (desired is not null && SlowApply > TimeSpan.Zero)
            {
                Thread.Sleep(SlowApply);
            }

            lock (_lock)
            {
                _applied.Add(desired);
            }

            return KernelOutcome.Done;
        }
        finally
        {
            Interlocked.Decrement(ref _inProgress);
        }
    }

    public override string ToString() => string.Join(Environment.NewLine, Applied.Select((s, i) => $"  {i}: {s?.ToString() ?? "(teardown)"}"));
}
