using Microsoft.Extensions.Logging;

namespace MobilityAgents.Reconciler;

/// <summary>The reconciler's log messages; event ids in one place (1xxx: the home agent's kernel reconciler).</summary>
internal static partial class Log
{
    public static class Ids
    {
        public const int KernelMutation = 1001;
        public const int OperationFailed = 1002;
        public const int BindingNotReached = 1003;
        public const int BindingRefused = 1004;
        public const int Applied = 1005;
        public const int Swept = 1006;
        public const int GratuitousArp = 1007;
        public const int Reasserting = 1008;
    }

    /// <summary>Every change to the kernel, as its ip/sysctl equivalent, logged before it is made.</summary>
    [LoggerMessage(EventId = Ids.KernelMutation, Level = LogLevel.Information, Message = "{Command}")]
    public static partial void KernelMutation(ILogger logger, string command);

    [LoggerMessage(EventId = Ids.OperationFailed, Level = LogLevel.Warning, Message = "{Error}")]
    public static partial void OperationFailed(ILogger logger, ReconcileError error);

    [LoggerMessage(EventId = Ids.BindingNotReached, Level = LogLevel.Warning, Message = "binding {BindingId}: not in place ({Reason}); its objects were rolled back")]
    public static partial void BindingNotReached(ILogger logger, string bindingId, string reason);

    [LoggerMessage(EventId = Ids.BindingRefused, Level = LogLevel.Warning, Message = "binding {BindingId}: refused: {Reason}")]
    public static partial void BindingRefused(ILogger logger, string bindingId, string reason);

    [LoggerMessage(EventId = Ids.Applied, Level = LogLevel.Information, Message = "kernel state: {Reached} of {Desired} tunnels in place, {Errors} errors")]
    public static partial void Applied(ILogger logger, int reached, int desired, int errors);

    [LoggerMessage(EventId = Ids.Swept, Level = LogLevel.Information, Message = "sweep: removed {Removed} orphaned objects, {Errors} errors")]
    public static partial void Swept(ILogger logger, int removed, int errors);

    [LoggerMessage(EventId = Ids.GratuitousArp, Level = LogLevel.Information, Message = "arping -U -A -c 1 -I {Interface} {Address} (gratuitous ARP from {Mac})")]
    public static partial void GratuitousArp(ILogger logger, string @interface, string address, string mac);

    [LoggerMessage(EventId = Ids.Reasserting, Level = LogLevel.Information, Message = "re-asserting the kernel state: {Reason}")]
    public static partial void Reasserting(ILogger logger, string reason);
}
