using Grpc.Core;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.HomeAgent.Tests.TestHomeAgent;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>Register, heartbeat, move, deregister over mTLS.</summary>
public sealed class RegistrationTests(TestPki pki)
{
    [Fact]
    public async Task Register_without_home_address_grants_the_authorized_one_and_describes_the_tunnel()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RegisterReply r = await ha.Alice.RegisterAsync(Request(), Call);

        Assert.Equal(32, r.BindingId.Length);
        Assert.Equal(Alice1, r.HomeAddress);
        Assert.Equal("192.0.2.0/24", r.HomePrefix);
        Assert.Equal("192.0.2.1", r.HomeAgentAddress);
        Assert.Equal(CareOfA, r.CareOfAddress);
        Assert.Equal("", r.InnerHomeAgentAddress); // unnumbered by default
        Assert.Equal("", r.InnerMobileAddress);
        Assert.Equal(90u, r.GrantedLifetimeSeconds);
        Assert.Equal(30u, r.HeartbeatIntervalSeconds); // ProtocolTimers.HeartbeatInterval(90 s)

        // The connection comes from 127.0.0.1, not from the care-of address the laptop reports:
        // NAT as far as the home agent can tell, so ipip-in-UDP with what keepalives need.
        Assert.Equal("127.0.0.1", r.ObservedAddress);
        Assert.Equal(Encapsulation.IpipUdp, r.Encapsulation);
        Assert.Equal(1472u, r.TunnelMtu); // 8 bytes of UDP header less than ipip's 1480
        Assert.Equal(4433u, r.UdpPort);
        Assert.Equal(32, r.KeepaliveKey.Length);
        Assert.NotEqual(0ul, r.KeepaliveToken);
        Assert.Equal(15u, r.KeepaliveIntervalSeconds);
    }

    [Fact]
    public async Task Register_gives_plain_ipip_when_the_laptop_insists_and_keeps_keepalive_credentials_per_binding()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RegisterRequest ipip = Request();
        ipip.Encapsulation = Encapsulation.Ipip;
        RegisterReply r = await ha.Alice.RegisterAsync(ipip, Call);
        Assert.Equal(Encapsulation.Ipip, r.Encapsulation);
        Assert.Equal(1480u, r.TunnelMtu);
        Assert.Equal(0u, r.UdpPort);
        Assert.True(r.KeepaliveKey.IsEmpty);

        // Back to UDP (a move behind NAT): same binding, and its credentials stay the same across
        // re-registrations, so the laptop's keepalive counter keeps its replay protection.
        RegisterReply u1 = await ha.Alice.RegisterAsync(Request(), Call);
        RegisterReply u2 = await ha.Alice.RegisterAsync(Request(), Call);
        Assert.Equal(r.BindingId, u1.BindingId);
        Assert.Equal(Encapsulation.IpipUdp, u1.Encapsulation);
        Assert.Equal(u1.KeepaliveToken, u2.KeepaliveToken);
        Assert.Equal(u1.KeepaliveKey, u2.KeepaliveKey);

        // Another binding gets other credentials.
        RegisterReply other = await ha.Alice.RegisterAsync(Request(home: Alice2), Call);
        Assert.NotEqual(u1.KeepaliveToken, other.KeepaliveToken);
        Assert.NotEqual(u1.KeepaliveKey, other.KeepaliveKey);
    }

    [Fact]
    public async Task Register_grants_a_requested_home_address_and_clamps_the_lifetime()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RegisterReply r = await ha.Alice.RegisterAsync(Request(home: Alice2, lifetime: 86_400), Call);
        Assert.Equal(Alice2, r.HomeAddress);
        Assert.Equal(3600u, r.GrantedLifetimeSeconds);
        Assert.Equal(1200u, r.HeartbeatIntervalSeconds);
    }

    [Fact]
    public async Task Heartbeats_refresh_the_binding_and_deregister_ends_it()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice;
        RegisterReply r = await alice.RegisterAsync(Request(), Call);
        long expiresAt = (await alice.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call)).ExpiresAt;

        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = alice.Heartbeat(Call);
        ha.Time.Advance(TimeSpan.FromSeconds(60)); // within the 90 s lifetime
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = r.BindingId }, Ct);
        HeartbeatReply reply = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, reply.Notice);
        Assert.Equal(r.BindingId, reply.BindingId);
        Assert.Equal(90u, reply.RemainingLifetimeSeconds);

        Binding b = await alice.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call);
        Assert.Equal(expiresAt + 60, b.ExpiresAt);
        Assert.True(b.Reachable);

        ha.Time.Advance(TimeSpan.FromSeconds(60)); // 120 s after Register: alive only because of the heartbeat
        Assert.True((await alice.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call)).Reachable);

        await alice.DeregisterAsync(new DeregisterRequest { BindingId = r.BindingId }, Call);
        b = await alice.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call);
        Assert.False(b.Reachable);
        Assert.Equal("", b.BindingId);

        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = r.BindingId }, Ct);
        reply = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.Reregister, reply.Notice);

        await hb.RequestStream.CompleteAsync();
        Assert.True(await hb.ResponseStream.EndsAsync());
        Assert.Equal(StatusCode.OK, hb.GetStatus().StatusCode);
    }

    [Fact]
    public async Task A_registration_from_a_new_care_of_address_moves_the_binding_and_keeps_its_id()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice;
        RegisterReply first = await alice.RegisterAsync(Request(CareOfA), Call);
        RegisterReply moved = await alice.RegisterAsync(Request(CareOfB), Call);

        Assert.Equal(first.BindingId, moved.BindingId);
        Assert.Equal(CareOfB, moved.CareOfAddress);
        Binding b = await alice.GetBindingAsync(new GetBindingRequest { Identity = "alice" }, Call);
        Assert.Equal(CareOfB, b.CareOfAddress);
        Assert.Equal(first.BindingId, b.BindingId);
    }

    [Fact]
    public async Task A_heartbeat_naming_an_unknown_binding_is_told_to_register_again()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = ha.Alice.Heartbeat(Call);
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = "0123456789abcdef0123456789abcdef" }, Ct);
        HeartbeatReply reply = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.Reregister, reply.Notice);
        Assert.Contains("register again", reply.Reason, StringComparison.Ordinal);

        await hb.RequestStream.WriteAsync(new HeartbeatRequest(), Ct);
        reply = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.Reregister, reply.Notice);
        Assert.Contains("register first", reply.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_binding_whose_heartbeats_stop_expires_and_its_stream_is_told_to_register_again()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice;
        RegisterReply r = await alice.RegisterAsync(Request(), Call);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = alice.Heartbeat(Call);
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = r.BindingId }, Ct);
        Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, (await hb.ResponseStream.NextAsync()).Notice);

        ha.Time.Advance(TimeSpan.FromSeconds(91));

        HeartbeatReply notice = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.Reregister, notice.Notice);
        Assert.Equal(r.BindingId, notice.BindingId);
        Assert.Contains("expired", notice.Reason, StringComparison.Ordinal);
    }
}
