using System.Collections.Immutable;
using System.Net;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using MobilityAgents.Core;
using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Protocol.V1;
using MobilityAgents.Reconciler;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>From a registration reply and the configuration to the reconciler's desired state; reading refusals.</summary>
public sealed class DesiredStateTests
{
    private static MobileAgentOptions Options(params (string Key, string Value)[] keys)
    {
        var k = new Dictionary<string, string?> { ["HomeAgent"] = "https://192.0.2.1:4433" };
        foreach ((string key, string value) in keys)
        {
            k[key] = value;
        }

        return MobileAgentConfiguration.Load(new ConfigurationBuilder().AddInMemoryCollection(k).Build(), "/");
    }

    private static RegisterReply Reply() => new()
    {
        BindingId = "b1",
        GrantedLifetimeSeconds = 90,
        HomeAddress = "192.0.2.77",
        HomePrefix = "192.0.2.0/24",
        HomeAgentAddress = "192.0.2.1",
        CareOfAddress = "198.51.100.10",
        TunnelMtu = 1400,
        HeartbeatIntervalSeconds = 30,
        Encapsulation = Protocol.V1.Encapsulation.Ipip,
    };

    [Fact]
    public void The_reply_gives_the_tunnel_and_the_configuration_the_local_choices()
    {
        MobileAgentState s = DesiredState.From(Reply(), Options(("TunnelName", "ma-home"), ("HomePrefixThroughTunnel", "true"), ("TcpPorts", "110,25"), ("FwMarkSelection", "true")), IPAddress.Parse("198.51.100.1"));
        Assert.Equal(IPAddress.Parse("198.51.100.10"), s.CareOfAddress);
        Assert.Equal(IPAddress.Parse("192.0.2.1"), s.HomeAgentAddress);
        Assert.Equal(IPAddress.Parse("192.0.2.77"), s.HomeAddress);
        Assert.Equal(IPNetwork.Parse("192.0.2.0/24"), s.HomePrefix);
        Assert.Equal(1400, s.TunnelMtu);
        Assert.Equal("ma-home", s.TunnelName);
        Assert.True(s.HomePrefixThroughTunnel);
        Assert.Equal(IPAddress.Parse("198.51.100.1"), s.VisitedGateway);
        Assert.True(s.FwMarkSelection);
        Assert.Equal(ImmutableSortedSet.Create<ushort>(25, 110), s.TcpPorts);
        Assert.Empty(s.Validate());
    }

    [Fact]
    public void A_reply_without_an_mtu_gets_the_ipip_default()
    {
        RegisterReply r = Reply();
        r.TunnelMtu = 0;
        Assert.Equal(MobileAgentState.DefaultTunnelMtu, DesiredState.From(r, Options(), null).TunnelMtu);
    }

    [Fact]
    public void An_ipip_in_udp_reply_takes_the_userspace_datapath_with_the_keepalive_credentials()
    {
        RegisterReply r = Reply();
        r.Encapsulation = Protocol.V1.Encapsulation.IpipUdp;
        r.UdpPort = 4433;
        r.KeepaliveToken = 0x0102030405060708;
        r.KeepaliveKey = Google.Protobuf.ByteString.CopyFrom(new byte[32]);
        r.KeepaliveIntervalSeconds = 20;
        r.TunnelMtu = 1472;
        MobileAgentState d = DesiredState.From(r, Options(), null);
        Assert.True(d.UserspaceTunnel);
        Assert.Equal(4433, d.UdpPort);
        Assert.Equal(0x0102030405060708ul, d.KeepaliveToken);
        Assert.Equal(32, d.KeepaliveKey.Length);
        Assert.Equal(TimeSpan.FromSeconds(20), d.KeepaliveInterval);
        Assert.Equal(1472, d.TunnelMtu);

        // Plain ipip stays in the kernel unless the datapath is configured userspace.
        Assert.False(DesiredState.From(Reply(), Options(), null).UserspaceTunnel);
        Assert.True(DesiredState.From(Reply(), Options(("Datapath", "userspace")), null).UserspaceTunnel);
    }

    [Theory]
    [InlineData("home_prefix")]
    [InlineData("home_address")]
    [InlineData("care_of_address")]
    [InlineData("home_agent_address")]
    [InlineData("binding_id")]
    [InlineData("encapsulation")]
    public void An_unusable_reply_is_a_protocol_violation_naming_the_field(string field)
    {
        RegisterReply r = Reply();
        switch (field)
        {
            case "home_prefix": r.HomePrefix = "192.0.2.0"; break;
            case "home_address": r.HomeAddress = "x"; break;
            case "care_of_address": r.CareOfAddress = ""; break;
            case "home_agent_address": r.HomeAgentAddress = "192.0.2.1.5"; break;
            case "binding_id": r.BindingId = ""; break;
            case "encapsulation": r.Encapsulation = Protocol.V1.Encapsulation.IpipUdp; break;
        }

        ProtocolViolationException e = Assert.Throws<ProtocolViolationException>(() => DesiredState.From(r, Options(), null));
        Assert.Contains(field.Replace("encapsulation", "udp_port", StringComparison.Ordinal), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_traffic_selection_asks_for_the_mark_when_ports_are_selected()
    {
        TrafficSelection t = DesiredState.Traffic(Options(("TcpPorts", "25"), ("HomePrefixThroughTunnel", "true")));
        Assert.True(t.HomePrefix);
        Assert.Equal(Ownership.FwMarkBit, t.Fwmark);
        Assert.Equal([25u], t.TcpPorts);
        Assert.Equal(0u, DesiredState.Traffic(Options()).Fwmark);
    }

    private static RpcException Refusal(StatusCode code, string reason)
    {
        var status = new Google.Rpc.Status { Code = (int)code, Message = "because" };
        status.Details.Add(Any.Pack(new ErrorInfo { Reason = reason, Domain = Agent.Refusal.Domain }));
        return status.ToRpcException();
    }

    [Theory]
    [InlineData(StatusCode.FailedPrecondition, "AT_HOME", FailureKind.AtHome)]
    [InlineData(StatusCode.InvalidArgument, "INVALID_CARE_OF_ADDRESS", FailureKind.CareOfRefused)]
    [InlineData(StatusCode.PermissionDenied, "NOT_AUTHORIZED", FailureKind.Permanent)]
    [InlineData(StatusCode.PermissionDenied, "HELD_BY_ANOTHER_IDENTITY", FailureKind.Permanent)]
    [InlineData(StatusCode.Unauthenticated, "NO_CLIENT_IDENTITY", FailureKind.Permanent)]
    [InlineData(StatusCode.Unavailable, "SHUTTING_DOWN", FailureKind.Transient)]
    [InlineData(StatusCode.Unavailable, "", FailureKind.Transient)]
    [InlineData(StatusCode.DeadlineExceeded, "", FailureKind.Transient)]
    public void Refusals_are_read_from_the_status_and_its_error_info(StatusCode code, string reason, FailureKind kind)
    {
        Assert.Equal(kind, Agent.Refusal.Classify(Refusal(code, reason)));
        Assert.Equal(reason.Length == 0 ? "" : reason, Agent.Refusal.ReasonOf(Refusal(code, reason)) ?? "");
    }

    [Fact]
    public void Network_errors_are_transient()
    {
        Assert.Equal(FailureKind.Transient, Agent.Refusal.Classify(new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused)));
        Assert.Equal(FailureKind.Transient, Agent.Refusal.Classify(new TimeoutException()));
        Assert.Equal(FailureKind.Transient, Agent.Refusal.Classify(new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "down"))));
    }
}
