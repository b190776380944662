using System.Net;

namespace MobilityAgents.Datapath;

/// <summary>How a peer's inner packets travel between the two tunnel ends.</summary>
public enum OuterEncapsulation
{
    /// <summary>RFC 2003 IP-in-IP: the inner packet follows an outer IPv4 header with protocol 4 (interoperates with a kernel ipip link).</summary>
    Ipip,

    /// <summary>ipip-in-UDP: the inner IPv4 packet is the whole UDP payload (the kernel's FOU with ipproto 4), for laptops behind NAT.</summary>
    Udp,
}

/// <summary>
/// Token and 32-byte key that authenticate keepalives (handed out by the home agent over TLS at
/// registration). The token names the binding in a keepalive; the key signs it (HMAC-SHA256).
/// </summary>
/// <param name="Token">The binding's keepalive token, sent in clear in every keepalive and ack.</param>
/// <param name="Key">The HMAC-SHA256 key (32 bytes).</param>
public sealed record KeepaliveCredentials(ulong Token, byte[] Key);

/// <summary>
/// One entry of the tunnel's peer table (think WireGuard AllowedIPs): which inner addresses go to
/// the peer, and which inner sources the peer may send.
/// </summary>
public sealed record TunnelPeer
{
    /// <summary>The binding id, for logs and counters; unique in a peer table.</summary>
    public required string Id { get; init; }

    /// <summary>Home agent side: the laptop's home address /32; mobile side: 0.0.0.0/0.</summary>
    public required IPNetwork Inner { get; init; }

    /// <summary>
    /// Ipip: the peer's outer address (packets go there, and only packets from there are accepted).
    /// Udp: mobile side = the home agent's address (fixed endpoint with <see cref="UdpPort"/>);
    /// home agent side = the care-of address the laptop reported (informational only).
    /// </summary>
    public required IPAddress OuterAddress { get; init; }

    /// <summary>Ipip (default) or Udp.</summary>
    public OuterEncapsulation Encapsulation { get; init; } = OuterEncapsulation.Ipip;

    /// <summary>
    /// Udp, mobile side: the home agent's UDP port (fixed endpoint <see cref="OuterAddress"/>:port).
    /// Home agent side: 0 = the endpoint is learned from authenticated keepalives only.
    /// </summary>
    public ushort UdpPort { get; init; }

    /// <summary>Udp: the mobile side sends keepalives with these; the home agent side verifies them.</summary>
    public KeepaliveCredentials? Keepalive { get; init; }
}
