using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using MobilityAgents.Core;

namespace MobilityAgents.HomeAgent.Configuration;

/// <summary>Which datapath carries the tunnels.</summary>
public enum DatapathKind
{
    /// <summary>The kernel's classic ipip links where the kernel can create them, else <see cref="Userspace"/> (decided and logged at start).</summary>
    Auto,

    /// <summary>One TUN device for every binding; the agent encapsulates (raw IP protocol 4, or UDP). Routes, proxy ARP and forwarding stay in the kernel.</summary>
    Userspace,

    /// <summary>One classic ipip link per binding (<c>ip tunnel add mode ipip ... remote CARE-OF</c>), as in the talk.</summary>
    KernelClassic,

    /// <summary>One external (collect_md) ipip link; each binding is a route with <c>encap ip dst CARE-OF</c>.</summary>
    KernelExternal,
}

/// <summary>
/// The home agent's validated configuration: immutable, built once at start by
/// <see cref="HomeAgentConfiguration.Load(string[])"/>. Every key is described in
/// <see cref="HomeAgentConfiguration.Keys"/> (what <c>--help</c> prints).
/// </summary>
public sealed record HomeAgentOptions
{
    /// <summary>Address and port of the gRPC endpoint (port 0: any free port, logged at start).</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>PEM file: the home agent's server certificate (and any intermediates after it).</summary>
    public required string Certificate { get; init; }

    /// <summary>PEM file: the private key of <see cref="Certificate"/>.</summary>
    public required string PrivateKey { get; init; }

    /// <summary>PEM file: the CA certificate(s) client certificates must chain to. Nothing else is trusted.</summary>
    public required string ClientCa { get; init; }

    /// <summary>The home network: home addresses lie in it, care-of addresses do not.</summary>
    public required IPNetwork HomePrefix { get; init; }

    /// <summary>The home agent's tunnel endpoint (the local end of every tunnel).</summary>
    public required IPAddress OuterAddress { get; init; }

    /// <summary>The home LAN interface (where proxy ARP answers for home addresses); empty until the datapath needs it.</summary>
    public string LanInterface { get; init; } = "";

    /// <summary>MTU of the tunnel: 1480 for ipip over a 1500-byte path.</summary>
    public int TunnelMtu { get; init; } = HomeAgentConfiguration.DefaultTunnelMtu;

    public TimeSpan DefaultLifetime { get; init; } = ProtocolTimers.DefaultLifetime;

    public TimeSpan MinimumLifetime { get; init; } = ProtocolTimers.MinimumLifetime;

    public TimeSpan MaximumLifetime { get; init; } = ProtocolTimers.MaximumLifetime;

    /// <summary>Identity (client certificate subject CN) -> the home addresses it may claim.</summary>
    public required FrozenDictionary<string, IReadOnlyList<IPAddress>> Authorizations { get; init; }

    /// <summary>Identities that may read every binding (GetBinding of anyone, ListBindings, WatchBindings).</summary>
    public required FrozenSet<string> Operators { get; init; }

    public DatapathKind Datapath { get; init; } = DatapathKind.Auto;

    /// <summary>UDP port of ipip-in-UDP (laptops behind NAT) and of their keepalives.</summary>
    public ushort UdpPort { get; init; } = HomeAgentConfiguration.DefaultUdpPort;

    /// <summary>How often laptops behind NAT send keepalives.</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(HomeAgentConfiguration.DefaultKeepaliveSeconds);

    /// <summary>Revocation checking of client certificates: off unless configured.</summary>
    public X509RevocationMode ClientCertificateRevocation { get; init; } = X509RevocationMode.NoCheck;

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>The binding table's settings.</summary>
    public BindingTableOptions BindingTable => new(HomePrefix, DefaultLifetime, MinimumLifetime, MaximumLifetime);

    /// <summary>The authorization policy built from <see cref="Authorizations"/> (already checked at load).</summary>
    public AuthorizationPolicy CreateAuthorizationPolicy() =>
        new(Authorizations.Select(kv => new KeyValuePair<string, IReadOnlyList<IPAddress>>(kv.Key, kv.Value)));
}
