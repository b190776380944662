namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// The mobile agent's own timers in one place (the protocol's lifetimes and heartbeat interval are
/// the home agent's to grant, in <see cref="Core.ProtocolTimers"/> and the RegisterReply). Every
/// wait built from these runs on the agent's <see cref="TimeProvider"/>. Tests use shorter ones.
/// </summary>
public sealed record AgentTimers
{
    public static readonly AgentTimers Default = new();

    /// <summary>
    /// Netlink events are collected this long after the first one before the care-of address is
    /// looked up again: a move is a burst (address, prefix route, default route, link state), and
    /// one lookup after it suffices (dotnet/runtime NetworkAddressChange.Unix.cs uses the same window).
    /// </summary>
    public TimeSpan MovementDebounce { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>First retry delay when the home agent is unreachable; doubles each attempt (with jitter).</summary>
    public TimeSpan ReconnectBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between two attempts while the home agent is unreachable.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>TCP connect plus TLS handshake of one attempt.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>One Register call, connection included.</summary>
    public TimeSpan RegisterTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a clean stop waits for Deregister before removing the kernel state anyway.</summary>
    public TimeSpan DeregisterTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a crashed run's kernel state is kept (adopted) while no registration confirms it:
    /// the home agent keeps the old binding at most this long without heartbeats unless a longer
    /// lifetime was asked for (then that one is used).
    /// </summary>
    public TimeSpan AdoptionWindow { get; init; } = Core.ProtocolTimers.DefaultLifetime;

    /// <summary>Shortest heartbeat interval honoured, whatever the reply says.</summary>
    public TimeSpan MinimumHeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>HTTP/2 pings while a call is open: a home agent gone silent is noticed within delay + timeout.</summary>
    public TimeSpan KeepAlivePingDelay { get; init; } = TimeSpan.FromSeconds(15);

    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
