namespace MobilityAgents.Core;

/// <summary>Protocol timers in one place (as wireguard-go's device/constants.go).</summary>
public static class ProtocolTimers
{
    /// <summary>Lifetime granted when the laptop asks for none.</summary>
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromSeconds(90);

    /// <summary>Shortest lifetime granted: below this, heartbeats would dominate the link.</summary>
    public static readonly TimeSpan MinimumLifetime = TimeSpan.FromSeconds(10);

    /// <summary>Longest lifetime granted: a vanished laptop's state is removed within this.</summary>
    public static readonly TimeSpan MaximumLifetime = TimeSpan.FromHours(1);

    /// <summary>Heartbeats are sent this many times per lifetime, so two may be lost without expiry.</summary>
    public const int HeartbeatsPerLifetime = 3;

    /// <summary>The heartbeat interval for a granted lifetime.</summary>
    public static TimeSpan HeartbeatInterval(TimeSpan lifetime) => lifetime / HeartbeatsPerLifetime;
}
