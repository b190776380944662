using System.Net;
using MobilityAgents.Netlink;

namespace MobilityAgents.Datapath;

/// <summary>How to start a <see cref="UserspaceTunnel"/>.</summary>
public sealed record UserspaceTunnelOptions
{
    /// <summary>The TUN link's name, e.g. "ma-u0" (home agent) or "ma-tun0" (laptop); 1..15 characters.</summary>
    public required string TunName { get; init; }

    /// <summary>IFLA_IFALIAS put on the TUN link (ownership marker, e.g. "mobilityagents:userspace"); null = none.</summary>
    public string? Alias { get; init; }

    /// <summary>
    /// The TUN MTU, set by the engine before the link is set up. 1480 fits ipip on a 1500-byte path;
    /// Udp needs 1472 to avoid outer fragmentation (outer DF is off, so larger packets are fragmented, not dropped).
    /// </summary>
    public int Mtu { get; init; } = 1480;

    /// <summary>The raw socket and the UDP socket are bound to it (home agent: its outer address; laptop: Any).</summary>
    public IPAddress LocalAddress { get; init; } = IPAddress.Any;

    /// <summary>Open the raw protocol-4 socket (RFC 2003 peers).</summary>
    public bool EnableIpip { get; init; } = true;

    /// <summary>Open the UDP socket (ipip-in-UDP peers).</summary>
    public bool EnableUdp { get; init; }

    /// <summary>Home agent: the port it listens on; laptop: 0 = ephemeral.</summary>
    public ushort UdpPort { get; init; }

    /// <summary>Laptop side: how often keepalives go to each UDP peer with credentials.</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Where the TUN device and the sockets are created (null = the current namespace).</summary>
    public NetworkNamespace? Namespace { get; init; }

    /// <summary>The clock of the keepalive timer and of <see cref="UserspaceTunnel.LastAckOf"/>.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
