namespace MobilityAgents.HomeAgent;

/// <summary>
/// Every log message of the home agent, with its event id, in one place (as YARP's nested Log
/// classes). Ids: 1000s lifecycle, 1100s bindings, 1200s heartbeat streams, 1300s security.
/// </summary>
internal static partial class Log
{
    // Lifecycle.
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Listening on {Address} (gRPC, HTTP/2, TLS 1.3, client certificate required)")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Home agent for {HomePrefix}, tunnel endpoint {OuterAddress}, MTU {TunnelMtu}, datapath {Datapath}: {Identities} authorized identities, {Operators} operators")]
    public static partial void Started(ILogger logger, string homePrefix, string outerAddress, int tunnelMtu, string datapath, int identities, int operators);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "No kernel datapath is wired in: bindings are negotiated and kept, but no tunnel, route or proxy ARP entry is programmed")]
    public static partial void NoDatapath(ILogger logger);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "PrivateKey {Path} is readable by other users: chmod 600 it")]
    public static partial void PrivateKeyReadableByOthers(ILogger logger, string path);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Shutting down: telling {Streams} heartbeat stream(s)")]
    public static partial void ShuttingDown(ILogger logger, int streams);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Server certificate {Subject} expires on {NotAfter:u}")]
    public static partial void ServerCertificateExpiresSoon(ILogger logger, string subject, DateTime notAfter);

    // Bindings (logged from the table's own events, so every change is logged once, in order).
    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Binding {Change}: {Identity} device '{DeviceId}' home {HomeAddress} care-of {CareOfAddress} over {Encapsulation} lifetime {LifetimeSeconds} s (binding {BindingId})")]
    public static partial void BindingChanged(ILogger logger, string change, string identity, string deviceId, string homeAddress, string careOfAddress, string encapsulation, int lifetimeSeconds, string bindingId);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Binding refreshed: {Identity} home {HomeAddress} until {ExpiresAt:u} (binding {BindingId})")]
    public static partial void BindingRefreshed(ILogger logger, string identity, string homeAddress, DateTimeOffset expiresAt, string bindingId);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Refused {Operation} from {Identity}: {Code}: {Reason}")]
    public static partial void Refused(ILogger logger, string operation, string identity, string code, string reason);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "NAT between {Identity} and us: it reports care-of {CareOfAddress}, its connection comes from {ObservedAddress}: {Encapsulation}")]
    public static partial void NatDetected(ILogger logger, string identity, string careOfAddress, string observedAddress, string encapsulation);

    // Heartbeat streams.
    [LoggerMessage(EventId = 1200, Level = LogLevel.Debug, Message = "Heartbeat stream opened by {Identity} from {Peer}")]
    public static partial void HeartbeatStreamOpened(ILogger logger, string identity, string peer);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Debug, Message = "Heartbeat stream of {Identity} closed")]
    public static partial void HeartbeatStreamClosed(ILogger logger, string identity);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Notice {Notice} to {Identity} (binding {BindingId}): {Reason}")]
    public static partial void NoticeSent(ILogger logger, string notice, string identity, string bindingId, string reason);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "Notice {Notice} to {Identity} dropped: its stream is not reading")]
    public static partial void NoticeDropped(ILogger logger, string notice, string identity);

    // Security.
    [LoggerMessage(EventId = 1300, Level = LogLevel.Warning, Message = "Rejected client certificate {Subject} (issuer {Issuer}): {Reason}")]
    public static partial void ClientCertificateRejected(ILogger logger, string subject, string issuer, string reason);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Unauthenticated call {Method} from {Peer}: {Reason}")]
    public static partial void Unauthenticated(ILogger logger, string method, string peer, string reason);

    // 1400-1499: the kernel datapath (the reconciler's own mutations are logged by it, 1001-1008 in its category).
    [LoggerMessage(EventId = 1400, Level = LogLevel.Information, Message = "Kernel datapath: applying {Tunnels} tunnel(s) ({Why})")]
    internal static partial void Applying(ILogger logger, string why, int tunnels);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Error, Message = "Kernel datapath: binding {BindingId}: {Error}")]
    internal static partial void KernelError(ILogger logger, string bindingId, string error);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Warning, Message = "Kernel datapath: one of our objects was removed by someone else ({Event}): re-asserting")]
    internal static partial void Reasserting(ILogger logger, string @event);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Information, Message = "Kernel datapath stopped: every object it installed removed ({Errors} error(s))")]
    internal static partial void Stopped(ILogger logger, int errors);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Information, Message = "Datapath {Kind}: {Reason}")]
    internal static partial void DatapathChosen(ILogger logger, string kind, string reason);

    [LoggerMessage(EventId = 1405, Level = LogLevel.Information, Message = "Listening for ipip-in-UDP (laptops behind NAT) on {Address}:{Port}")]
    internal static partial void UdpListening(ILogger logger, string address, int port);

    [LoggerMessage(EventId = 1406, Level = LogLevel.Information, Message = "Binding {BindingId}: the laptop behind NAT is at {Endpoint} (learned from an authenticated keepalive)")]
    internal static partial void EndpointLearned(ILogger logger, string bindingId, string endpoint);
}
