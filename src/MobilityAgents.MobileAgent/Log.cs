namespace MobilityAgents.MobileAgent;

/// <summary>
/// Every log message of the mobile agent, with its event id, in one place (as YARP's nested Log
/// classes). Ids: 2000s lifecycle, 2100s registration, 2200s heartbeats, 2300s movement, 2400s kernel.
/// </summary>
internal static partial class Log
{
    // Lifecycle.
    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "Mobile agent {Identity} device '{DeviceId}': home agent {HomeAgent}, tunnel endpoint {HomeAgentAddress}, network namespace {Namespace}")]
    public static partial void Started(ILogger logger, string identity, string deviceId, string homeAgent, string homeAgentAddress, string @namespace);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "{From} -> {To}: {Reason}")]
    public static partial void StateChanged(ILogger logger, string from, string to, string reason);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "PrivateKey {Path} is readable by other users: chmod 600 it")]
    public static partial void PrivateKeyReadableByOthers(ILogger logger, string path);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Stopped (exit status {ExitCode}): {Reason}")]
    public static partial void Stopped(ILogger logger, int exitCode, string reason);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Critical, Message = "The agent failed; kernel state is left for the next start to adopt or sweep")]
    public static partial void Crashed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Client certificate {Subject} expires on {NotAfter:u}")]
    public static partial void ClientCertificateExpiresSoon(ILogger logger, string subject, DateTime notAfter);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Critical, Message = "Cannot start: {Reason}")]
    public static partial void CannotStart(ILogger logger, string reason);

    // Registration.
    [LoggerMessage(EventId = 2100, Level = LogLevel.Information, Message = "Registered home address {HomeAddress} at care-of {CareOf} with {HomeAgentAddress} over {Encapsulation}: lifetime {LifetimeSeconds} s, heartbeat every {IntervalSeconds} s (binding {BindingId})")]
    public static partial void Registered(ILogger logger, string homeAddress, string careOf, string homeAgentAddress, string encapsulation, int lifetimeSeconds, double intervalSeconds, string bindingId);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Cannot register from {CareOf} (attempt {Attempt}): {Reason}; next attempt in {DelaySeconds:0.0} s")]
    public static partial void RegisterRetry(ILogger logger, string careOf, int attempt, string reason, double delaySeconds);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Error, Message = "The home agent refused the registration for good: {Code} {Reason}")]
    public static partial void Refused(ILogger logger, string code, string reason);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Information, Message = "Care-of address {CareOf} is on the home network{HomePrefix}: at home, no binding and no tunnel")]
    public static partial void AtHome(ILogger logger, string careOf, string homePrefix);

    [LoggerMessage(EventId = 2104, Level = LogLevel.Information, Message = "Deregistered binding {BindingId}")]
    public static partial void Deregistered(ILogger logger, string bindingId);

    [LoggerMessage(EventId = 2105, Level = LogLevel.Warning, Message = "Could not deregister binding {BindingId} (it lapses at the home agent within its lifetime): {Reason}")]
    public static partial void DeregisterFailed(ILogger logger, string bindingId, string reason);

    [LoggerMessage(EventId = 2106, Level = LogLevel.Warning, Message = "Binding {BindingId} lapsed at {ExpiresAt:u}: {Reason}; tunnel removed, registering again")]
    public static partial void BindingExpired(ILogger logger, string bindingId, DateTimeOffset expiresAt, string reason);

    [LoggerMessage(EventId = 2107, Level = LogLevel.Error, Message = "Binding {BindingId} was replaced by another device: {Reason}; tunnel removed, stopping without registering again")]
    public static partial void BindingReplaced(ILogger logger, string bindingId, string reason);

    [LoggerMessage(EventId = 2108, Level = LogLevel.Information, Message = "No registration confirmed a previous run's kernel state within {WindowSeconds} s: removing it")]
    public static partial void AdoptionEnded(ILogger logger, int windowSeconds);

    [LoggerMessage(EventId = 2109, Level = LogLevel.Warning, Message = "Home agent certificate rejected: {Reason}")]
    public static partial void CertificateRejected(ILogger logger, string reason);

    [LoggerMessage(EventId = 2110, Level = LogLevel.Warning, Message = "The home agent does not accept care-of address {CareOf}: {Reason}; waiting for another address")]
    public static partial void CareOfRefused(ILogger logger, string careOf, string reason);

    [LoggerMessage(EventId = 2111, Level = LogLevel.Error, Message = "The home agent's registration reply is unusable: {Reason}")]
    public static partial void ProtocolViolation(ILogger logger, string reason);

    // Heartbeats.
    [LoggerMessage(EventId = 2200, Level = LogLevel.Debug, Message = "Heartbeat: binding {BindingId} refreshed, {RemainingSeconds} s left")]
    public static partial void Refreshed(ILogger logger, string bindingId, uint remainingSeconds);

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Notice {Notice} (binding {BindingId}): {Reason}")]
    public static partial void Notice(ILogger logger, string notice, string bindingId, string reason);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "Heartbeats to the home agent failed: {Reason}; keeping the tunnel until {ExpiresAt:u} while reconnecting")]
    public static partial void HeartbeatLost(ILogger logger, string reason, DateTimeOffset expiresAt);

    // Movement.
    [LoggerMessage(EventId = 2300, Level = LogLevel.Information, Message = "Care-of address {Old} -> {New} ({Why})")]
    public static partial void CareOfChanged(ILogger logger, string old, string @new, string why);

    [LoggerMessage(EventId = 2301, Level = LogLevel.Information, Message = "Moved from {Old} to {New}: connection from {Old} abandoned, registering from {New}")]
    public static partial void Moved(ILogger logger, string old, string @new);

    [LoggerMessage(EventId = 2302, Level = LogLevel.Error, Message = "The netlink event monitor failed ({Reason}): reopening it")]
    public static partial void MonitorFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 2303, Level = LogLevel.Warning, Message = "ip route get {Target} failed: {Reason}")]
    public static partial void LookupFailed(ILogger logger, string target, string reason);

    [LoggerMessage(EventId = 2304, Level = LogLevel.Warning, Message = "The route to the home agent {Target} goes through the tunnel {Tunnel} itself: keeping the last care-of address")]
    public static partial void LookupThroughTunnel(ILogger logger, string target, string tunnel);

    [LoggerMessage(EventId = 2305, Level = LogLevel.Warning, Message = "No route to the home agent {Target}: waiting for a network")]
    public static partial void NoRoute(ILogger logger, string target);

    // Kernel.
    [LoggerMessage(EventId = 2400, Level = LogLevel.Information, Message = "Kernel: {Desired}")]
    public static partial void KernelApplied(ILogger logger, string desired);

    [LoggerMessage(EventId = 2401, Level = LogLevel.Error, Message = "Kernel: could not reach {Desired}: {Errors}")]
    public static partial void KernelFailed(ILogger logger, string desired, string errors);

    // The datapath (2800s).
    [LoggerMessage(EventId = 2800, Level = LogLevel.Information, Message = "Datapath {Kind}: {Reason}")]
    public static partial void DatapathChosen(ILogger logger, string kind, string reason);

    [LoggerMessage(EventId = 2801, Level = LogLevel.Information, Message = "Userspace datapath up on {TunName} (ipip raw socket; UDP port {UdpPort})")]
    public static partial void UserspaceStarted(ILogger logger, string tunName, int udpPort);

    [LoggerMessage(EventId = 2802, Level = LogLevel.Error, Message = "{Message}")]
    public static partial void UserspaceFailed(ILogger logger, string message);
}
