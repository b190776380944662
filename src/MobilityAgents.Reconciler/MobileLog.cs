using Microsoft.Extensions.Logging;

namespace MobilityAgents.Reconciler;

/// <summary>The mobile agent's reconciler's log messages; event ids in one place (2xxx: the mobile agent's kernel reconciler; 1xxx are the home agent's).</summary>
internal static partial class MobileLog
{
    public static class Ids
    {
        public const int KernelMutation = 2001;
        public const int OperationFailed = 2002;
        public const int Refused = 2003;
        public const int RollingBack = 2004;
        public const int Applied = 2005;
        public const int Swept = 2006;
        public const int Reasserting = 2007;
        public const int Adopted = 2008;
    }

    /// <summary>Every change to the kernel, as its ip/nft/sysctl equivalent, logged before it is made.</summary>
    [LoggerMessage(EventId = Ids.KernelMutation, Level = LogLevel.Information, Message = "{Command}")]
    public static partial void KernelMutation(ILogger logger, string command);

    [LoggerMessage(EventId = Ids.OperationFailed, Level = LogLevel.Warning, Message = "{Error}")]
    public static partial void OperationFailed(ILogger logger, MobileAgentError error);

    [LoggerMessage(EventId = Ids.Refused, Level = LogLevel.Warning, Message = "mobile agent state refused, the kernel was not touched: {Reason}")]
    public static partial void Refused(ILogger logger, string reason);

    [LoggerMessage(EventId = Ids.RollingBack, Level = LogLevel.Warning, Message = "rolling back {Steps} steps of this apply after: {Failure}")]
    public static partial void RollingBack(ILogger logger, int steps, string failure);

    [LoggerMessage(EventId = Ids.Applied, Level = LogLevel.Information, Message = "mobile agent kernel state: {State} ({Errors} errors)")]
    public static partial void Applied(ILogger logger, string state, int errors);

    [LoggerMessage(EventId = Ids.Swept, Level = LogLevel.Information, Message = "sweep: removed {Removed} marked objects, {Errors} errors")]
    public static partial void Swept(ILogger logger, int removed, int errors);

    [LoggerMessage(EventId = Ids.Reasserting, Level = LogLevel.Information, Message = "re-asserting the mobile agent's kernel state: {Reason}")]
    public static partial void Reasserting(ILogger logger, string reason);

    [LoggerMessage(EventId = Ids.Adopted, Level = LogLevel.Information, Message = "adopted the existing tunnel {Name} (ifindex {Index})")]
    public static partial void Adopted(ILogger logger, string name, int index);
}
