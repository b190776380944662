using System.Net;
using MobilityAgents.Core;

namespace MobilityAgents.MobileAgent.Configuration;

/// <summary>Which datapath carries the laptop's tunnel.</summary>
public enum MobileDatapath
{
    /// <summary>Kernel where the kernel can create ipip links, else userspace (decided and logged at start).</summary>
    Auto,

    /// <summary>The kernel's classic ipip link (ipip-in-UDP still goes through userspace).</summary>
    Kernel,

    /// <summary>A TUN device; the agent encapsulates.</summary>
    Userspace,
}

/// <summary>What the laptop asks the home agent for.</summary>
public enum MobileEncapsulation
{
    /// <summary>The home agent decides (ipip-in-UDP when it sees NAT).</summary>
    Auto,

    /// <summary>IP protocol 4 always.</summary>
    Ipip,

    /// <summary>ipip-in-UDP always.</summary>
    Udp,
}

/// <summary>
/// The mobile agent's validated configuration: immutable, built once at start by
/// <see cref="MobileAgentConfiguration.Load(string[])"/>. Every key is described in
/// <see cref="MobileAgentConfiguration.Keys"/> (what <c>--help</c> prints).
/// </summary>
public sealed record MobileAgentOptions
{
    /// <summary>The home agent's control endpoint, https://host:port.</summary>
    public required Uri HomeAgent { get; init; }

    /// <summary>
    /// The home agent's outer tunnel address: the care-of address is the source the kernel picks
    /// for the route to it. Used until the first RegisterReply, which carries the authoritative one.
    /// </summary>
    public required IPAddress HomeAgentAddress { get; init; }

    /// <summary>PEM file: this laptop's client certificate (its subject CN is its identity), intermediates after it.</summary>
    public required string Certificate { get; init; }

    /// <summary>PEM file: the private key of <see cref="Certificate"/>.</summary>
    public required string PrivateKey { get; init; }

    /// <summary>PEM file: the CA certificate(s) the home agent's certificate must chain to. No system root is trusted.</summary>
    public required string Ca { get; init; }

    /// <summary>The home address to claim; null = the one the identity is authorized for.</summary>
    public IPAddress? HomeAddress { get; init; }

    /// <summary>Stable per device: another device of the same identity registering the same home address replaces this one.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Requested binding lifetime; zero = the home agent's default.</summary>
    public TimeSpan Lifetime { get; init; }

    /// <summary>The mirror ipip link's name.</summary>
    public string TunnelName { get; init; } = MobileAgentConfiguration.DefaultTunnelName;

    /// <summary>Route the whole home prefix through the tunnel (with the home address as source).</summary>
    public bool HomePrefixThroughTunnel { get; init; }

    /// <summary>Locally generated TCP to these ports is marked and leaves through the tunnel.</summary>
    public IReadOnlyList<ushort> TcpPorts { get; init; } = [];

    /// <summary>Packets carrying <see cref="Ownership.FwMarkBit"/> (set by the administrator's own rules) leave through the tunnel.</summary>
    public bool FwMarkSelection { get; init; }

    /// <summary>Run inside this named network namespace (/run/netns/NAME); null = the process's own.</summary>
    public string? Namespace { get; init; }

    /// <summary>Which datapath carries the tunnel (Auto is resolved at start).</summary>
    public MobileDatapath Datapath { get; init; } = MobileDatapath.Auto;

    /// <summary>The encapsulation asked for in registrations.</summary>
    public MobileEncapsulation Encapsulation { get; init; } = MobileEncapsulation.Auto;

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>
    /// The fwmark asked for in the registration: <see cref="Ownership.FwMarkBit"/> when packets are
    /// selected by mark (<see cref="FwMarkSelection"/>, or <see cref="TcpPorts"/>, which are marked
    /// with it), 0 otherwise.
    /// </summary>
    public uint FwMark => FwMarkSelection || TcpPorts.Count > 0 ? Ownership.FwMarkBit : 0;

    public bool Equals(MobileAgentOptions? other) =>
        other is not null &&
        HomeAgent == other.HomeAgent && HomeAgentAddress.Equals(other.HomeAgentAddress) &&
        Certificate == other.Certificate && PrivateKey == other.PrivateKey && Ca == other.Ca &&
        Equals(HomeAddress, other.HomeAddress) && DeviceId == other.DeviceId && Lifetime == other.Lifetime &&
        TunnelName == other.TunnelName && HomePrefixThroughTunnel == other.HomePrefixThroughTunnel &&
        TcpPorts.SequenceEqual(other.TcpPorts) && FwMarkSelection == other.FwMarkSelection &&
        Namespace == other.Namespace && LogLevel == other.LogLevel && Datapath == other.Datapath && Encapsulation == other.Encapsulation;

    public override int GetHashCode() => HashCode.Combine(HomeAgent, HomeAgentAddress, DeviceId, HomeAddress, TunnelName, TcpPorts.Count);
}
