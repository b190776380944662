using System.Net;
using System.Net.Sockets;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Protocol.V1;
using MobilityAgents.Reconciler;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// The kernel state a registration calls for: the negotiated binding (from the
/// <see cref="RegisterReply"/>: care-of and home agent addresses, home address and prefix, MTU)
/// and the laptop's own choices (from the configuration: tunnel name, traffic selection), as the
/// mobile agent reconciler's <see cref="MobileAgentState"/>.
/// </summary>
public static class DesiredState
{
    /// <summary>
    /// The desired state of <paramref name="reply"/> under <paramref name="options"/>;
    /// <paramref name="visitedGateway"/> is the visited network's router towards the home agent
    /// (pins the home agent's route when the home prefix goes through the tunnel). Throws
    /// <see cref="ProtocolViolationException"/> if the reply is unusable: a malformed address, or
    /// an encapsulation this agent does not program.
    /// </summary>
    public static MobileAgentState From(RegisterReply reply, MobileAgentOptions options, IPAddress? visitedGateway)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(reply.BindingId))
        {
            throw new ProtocolViolationException("the registration reply has no binding_id");
        }

        bool udp = reply.Encapsulation == Protocol.V1.Encapsulation.IpipUdp;
        if (!udp && reply.Encapsulation is not (Protocol.V1.Encapsulation.Ipip or Protocol.V1.Encapsulation.Unspecified))
        {
            throw new ProtocolViolationException($"the home agent granted encapsulation {reply.Encapsulation}, which this agent does not know");
        }

        if (udp && (reply.UdpPort is 0 or > 65535 || reply.KeepaliveKey.Length != 32))
        {
            throw new ProtocolViolationException($"the home agent granted ipip-in-UDP without a usable udp_port ({reply.UdpPort}) and 32-byte keepalive_key ({reply.KeepaliveKey.Length} bytes)");
        }

        if (!IPNetwork.TryParse(reply.HomePrefix, out IPNetwork prefix) || prefix.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ProtocolViolationException($"home_prefix '{reply.HomePrefix}' in the registration reply is not an IPv4 prefix");
        }

        return new MobileAgentState(
            Address(reply.CareOfAddress, "care_of_address"),
            Address(reply.HomeAgentAddress, "home_agent_address"),
            Address(reply.HomeAddress, "home_address"),
            prefix)
        {
            TunnelMtu = reply.TunnelMtu is >= 68 and <= 65515 ? (int)reply.TunnelMtu : MobileAgentState.DefaultTunnelMtu,
            TunnelName = options.TunnelName,
            HomePrefixThroughTunnel = options.HomePrefixThroughTunnel,
            VisitedGateway = visitedGateway,
            FwMarkSelection = options.FwMarkSelection,
            TcpPorts = [.. options.TcpPorts],
            // ipip-in-UDP is always the userspace datapath's (the kernel's FOU is not driven yet).
            UserspaceTunnel = udp || options.Datapath == MobileDatapath.Userspace,
            UdpPort = udp ? (ushort)reply.UdpPort : (ushort)0,
            KeepaliveToken = udp ? reply.KeepaliveToken : 0,
            KeepaliveKey = udp ? [.. reply.KeepaliveKey.Span] : [],
            KeepaliveInterval = udp ? TimeSpan.FromSeconds(Math.Clamp(reply.KeepaliveIntervalSeconds, 1u, 300u)) : TimeSpan.Zero,
        };
    }

    /// <summary>The encapsulation asked for in a registration.</summary>
    public static Protocol.V1.Encapsulation Requested(MobileAgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Encapsulation switch
        {
            MobileEncapsulation.Ipip => Protocol.V1.Encapsulation.Ipip,
            MobileEncapsulation.Udp => Protocol.V1.Encapsulation.IpipUdp,
            _ => Protocol.V1.Encapsulation.Unspecified,
        };
    }

    /// <summary>The traffic selection sent with a registration (the home agent checks it; this end applies it).</summary>
    public static TrafficSelection Traffic(MobileAgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new TrafficSelection
        {
            HomePrefix = options.HomePrefixThroughTunnel,
            Fwmark = options.FwMark,
            TcpPorts = { options.TcpPorts.Select(p => (uint)p) },
        };
    }

    private static IPAddress Address(string value, string field) =>
        MobileAgentConfiguration.TryParseIpv4(value, out IPAddress a)
            ? a
            : throw new ProtocolViolationException($"{field} '{value}' in the registration reply is not an IPv4 address");
}
