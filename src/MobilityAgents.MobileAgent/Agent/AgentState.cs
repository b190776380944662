namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// Where the mobile agent is. The transitions (every one is logged, event 2001):
/// <code>
/// Starting     -> Registering (a care-of address) | NoRoute (none)
/// Registering  -> Registered (reply; kernel programmed) | AtHome (AT_HOME) | NoRoute (address gone)
///                 | Stopped (refused for good: exit 77) | Registering (unreachable: backoff + jitter)
/// Registered   -> Reconnecting (moved: new channel from the new address; SHUTTING_DOWN, REREGISTER,
///                 heartbeat stream lost or unanswered) | AtHome (moved home: deregister, tunnel removed)
///                 | NoRoute (address gone; tunnel kept) | Stopped (BINDING_REPLACED: tunnel removed, exit 3)
/// Reconnecting -> Registered (re-registered; kernel moved in place) | Registering (lifetime ran out:
///                 tunnel removed) | AtHome | NoRoute | Stopped
/// NoRoute      -> Registering/Reconnecting (an address appears) ; lifetime runs out: tunnel removed
/// AtHome       -> Registering (left home)
/// any          -> Stopping (SIGTERM: Deregister within 2 s, tunnel removed) -> Stopped (exit 0)
/// </code>
/// While a binding is live (Registered, Reconnecting, NoRoute with a binding) the tunnel stays
/// programmed until the granted lifetime runs out: short outages do not break connections.
/// </summary>
public enum AgentState
{
    Starting,

    /// <summary>No route to the home agent: no care-of address.</summary>
    NoRoute,

    /// <summary>The care-of address is on the home network: no binding, no tunnel.</summary>
    AtHome,

    /// <summary>No live binding: registering (with backoff while the home agent is unreachable).</summary>
    Registering,

    /// <summary>Bound; heartbeats flowing; tunnel programmed.</summary>
    Registered,

    /// <summary>A binding is live (tunnel kept) but must be renewed: after a move, a notice or a lost stream.</summary>
    Reconnecting,

    /// <summary>SIGTERM: deregistering and removing the kernel state.</summary>
    Stopping,

    /// <summary>Done; see <see cref="MobileAgent.ExitCode"/>.</summary>
    Stopped,
}
