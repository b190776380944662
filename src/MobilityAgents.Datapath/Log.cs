using System.Net;
using Microsoft.Extensions.Logging;

namespace MobilityAgents.Datapath;

/// <summary>The datapath's log messages (event ids 4000-4099).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Information, Message = "Userspace tunnel {Tun} (index {Index}, mtu {Mtu}) up in network namespace {Namespace}: ipip {Ipip}, udp {Udp} port {UdpPort}, local {Local}")]
    public static partial void Started(ILogger logger, string tun, int index, int mtu, string @namespace, bool ipip, bool udp, ushort udpPort, IPAddress local);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Userspace tunnel {Tun} stopped: {Counters}")]
    public static partial void Stopped(ILogger logger, string tun, UserspaceTunnelCounters counters);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Userspace tunnel {Tun}: {Count} peers ({Peers})")]
    public static partial void PeersSet(ILogger logger, string tun, int count, string peers);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Userspace tunnel {Tun}: peer {Peer} endpoint learned {Endpoint} (was {Previous})")]
    public static partial void EndpointLearned(ILogger logger, string tun, string peer, IPEndPoint endpoint, string previous);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Userspace tunnel {Tun}: dropping packets ({Reason}): {Total} so far, last from {Source}")]
    public static partial void Dropping(ILogger logger, string tun, DropReason reason, long total, string source);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Userspace tunnel {Tun}: {Operation} failed: {Error}")]
    public static partial void IoError(ILogger logger, string tun, string operation, string error);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Error, Message = "Userspace tunnel {Tun}: datapath thread {Thread} failed")]
    public static partial void ThreadFailed(ILogger logger, Exception exception, string tun, string thread);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Warning, Message = "Userspace tunnel {Tun}: a datapath thread did not stop within {Seconds} s; its buffers are left allocated")]
    public static partial void ThreadStuck(ILogger logger, string tun, int seconds);
}
