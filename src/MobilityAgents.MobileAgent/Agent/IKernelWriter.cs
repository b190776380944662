using MobilityAgents.Reconciler;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>What a kernel write reached: the problems, as <c>ip</c> commands with their errno; none when it reached the desired state.</summary>
public sealed record KernelOutcome(IReadOnlyList<string> Errors)
{
    public static readonly KernelOutcome Done = new([]);

    public bool Reached => Errors.Count == 0;
}

/// <summary>
/// The agent's only way to the kernel: the state machine says what the kernel should hold, the
/// writer makes it so. <see cref="ReconcilerKernelWriter"/> is the real one (the mobile agent
/// reconciler over rtnetlink, in the configured namespace); tests use a recording one. Calls come
/// from the agent's loop, one at a time, in order.
/// </summary>
public interface IKernelWriter
{
    /// <summary>
    /// Makes the kernel hold <paramref name="desired"/>: the mirror tunnel, the home address on it,
    /// the policy rule and the tunnel table, the selections. Null removes every object the agent
    /// marks as its own. Objects already there (from before a move, or from a run that crashed) are
    /// adopted and changed in place; marked objects the desired state does not own are removed.
    /// </summary>
    KernelOutcome Apply(MobileAgentState? desired);
}
