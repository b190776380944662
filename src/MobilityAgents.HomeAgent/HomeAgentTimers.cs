namespace MobilityAgents.HomeAgent;

/// <summary>
/// The daemon's own timers, in one place (the protocol's are in Core's ProtocolTimers). All
/// waits on them go through the injected TimeProvider, except the host's shutdown timeout and
/// Kestrel's keep-alive, which the framework runs on the system clock.
/// </summary>
public static class HomeAgentTimers
{
    /// <summary>
    /// How long a stop (SIGTERM) waits for open calls to end after the shutting-down notices went
    /// out: heartbeat and watch streams end within <see cref="FinalNoticeGrace"/>, so this only
    /// bounds a stuck call.
    /// </summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a heartbeat stream stays open after its final notice (shutting down) for the laptop
    /// to close its side: an HTTP/2 client drops unread data of a stream it is still sending on
    /// when the connection closes, so ending at once could lose the notice.
    /// </summary>
    public static readonly TimeSpan FinalNoticeGrace = TimeSpan.FromSeconds(2);

    /// <summary>HTTP/2 pings on idle connections: a vanished laptop's streams are dropped within delay + timeout.</summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
}
