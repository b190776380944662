using Google.Rpc;
using Grpc.Core;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.HomeAgent.Tests.TestHomeAgent;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>Every refusal is a status a user can act on; no laptop touches another identity's binding.</summary>
public sealed class RefusalTests(TestPki pki)
{
    [Fact]
    public async Task A_client_certificate_from_another_CA_fails_the_TLS_handshake()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Client(pki.ForeignAlice).RegisterAsync(Request(), Call).ResponseAsync);
        AssertHandshakeRefused(e);
        Assert.Equal(0, Table(ha).Count);
    }

    [Fact]
    public async Task No_client_certificate_fails_the_TLS_handshake()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Client(null).RegisterAsync(Request(), Call).ResponseAsync);
        AssertHandshakeRefused(e);
        Assert.Equal(0, Table(ha).Count);
    }

    [Fact]
    public async Task Expired_and_non_client_certificates_fail_the_TLS_handshake()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        foreach (var cert in new[] { pki.ExpiredAlice, pki.ServerAuthOnly })
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Client(cert).RegisterAsync(Request(), Call).ResponseAsync);
            AssertHandshakeRefused(e);
        }

        Assert.Equal(0, Table(ha).Count);
    }

    [Fact]
    public async Task A_valid_certificate_without_a_CN_is_unauthenticated()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Client(pki.NoCommonName).RegisterAsync(Request(), Call).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Equal("client certificate 'O=MobilityAgents Tests, OU=laptops' has no subject CN: its CN is the identity (see certs/README.md)", e.Status.Detail);
        Assert.Equal("NO_CLIENT_IDENTITY", e.GetRpcStatus()!.GetDetail<ErrorInfo>()!.Reason);
    }

    [Fact]
    public async Task An_unauthorized_home_address_is_permission_denied_with_the_reason()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Alice.RegisterAsync(Request(home: "192.0.2.99"), Call).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Equal("identity alice is not authorized for 192.0.2.99", e.Status.Detail);
        ErrorInfo info = e.GetRpcStatus()!.GetDetail<ErrorInfo>()!;
        Assert.Equal("NOT_AUTHORIZED", info.Reason);
        Assert.Equal("mobilityagents.v1", info.Domain);
    }

    [Fact]
    public async Task A_laptop_cannot_claim_replace_refresh_or_drop_another_identitys_binding()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice, bob = ha.Bob;
        RegisterReply bobs = await bob.RegisterAsync(Request(CareOfB, device: "bobs-laptop"), Call);

        // Claim (or replace, with any device id) bob's address.
        RpcException claim = await Assert.ThrowsAsync<RpcException>(() => alice.RegisterAsync(Request(home: Bob1, device: "bobs-laptop"), Call).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, claim.StatusCode);
        Assert.Equal($"identity alice is not authorized for {Bob1}", claim.Status.Detail);

        // Deregister bob's binding by its id: reported exactly like a binding that does not exist.
        RpcException drop = await Assert.ThrowsAsync<RpcException>(() => alice.DeregisterAsync(new DeregisterRequest { BindingId = bobs.BindingId }, Call).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, drop.StatusCode);
        Assert.Equal($"no binding {bobs.BindingId} for alice: register again", drop.Status.Detail);
        Assert.Equal("UNKNOWN_BINDING", drop.GetRpcStatus()!.GetDetail<ErrorInfo>()!.Reason);

        // Keep it alive with a heartbeat: told to register (its own), bob's binding is not refreshed.
        Binding before = await bob.GetBindingAsync(new GetBindingRequest { Identity = "bob" }, Call);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = alice.Heartbeat(Call);
        ha.Time.Advance(TimeSpan.FromSeconds(30));
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = bobs.BindingId }, Ct);
        Assert.Equal(HeartbeatReply.Types.Notice.Reregister, (await hb.ResponseStream.NextAsync()).Notice);

        Binding after = await bob.GetBindingAsync(new GetBindingRequest { Identity = "bob" }, Call);
        Assert.Equal(before.ExpiresAt, after.ExpiresAt);
        Assert.Equal(bobs.BindingId, after.BindingId);
        Assert.Equal(CareOfB, after.CareOfAddress);
        Assert.True(after.Reachable);
    }

    [Fact]
    public async Task Deregistering_an_unknown_binding_is_not_found()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Alice.DeregisterAsync(new DeregisterRequest { BindingId = "nope" }, Call).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);

        e = await Assert.ThrowsAsync<RpcException>(() => ha.Alice.DeregisterAsync(new DeregisterRequest(), Call).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("binding_id", BadField(e));
    }

    [Theory]
    [InlineData("0.0.0.0", "care-of address 0.0.0.0 is not a unicast address")]
    [InlineData("255.255.255.255", "care-of address 255.255.255.255 is not a unicast address")]
    [InlineData("224.0.0.1", "care-of address 224.0.0.1 is not a unicast address")]
    [InlineData("127.0.0.1", "care-of address 127.0.0.1 is not a unicast address")]
    [InlineData("not-an-ip", "care-of address 'not-an-ip' is not an IPv4 address (a.b.c.d)")]
    [InlineData("1", "care-of address '1' is not an IPv4 address (a.b.c.d)")]
    [InlineData("198.51.100.010", "care-of address '198.51.100.010' is not an IPv4 address (a.b.c.d)")]
    [InlineData("2001:db8::1", "care-of address '2001:db8::1' is not an IPv4 address (a.b.c.d)")]
    [InlineData("", "care_of_address is required: the laptop's current address on the visited network")]
    public async Task An_invalid_care_of_address_is_an_invalid_argument_naming_the_field(string careOf, string reason)
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Alice.RegisterAsync(Request(careOf), Call).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(reason, e.Status.Detail);
        Assert.Equal("care_of_address", BadField(e));
    }

    [Fact]
    public async Task Malformed_home_address_device_id_and_ports_are_invalid_arguments_naming_the_field()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice;
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => alice.RegisterAsync(Request(home: "192.0.2"), Call).ResponseAsync);
        Assert.Equal("home_address", BadField(e));

        e = await Assert.ThrowsAsync<RpcException>(() => alice.RegisterAsync(Request(home: "10.0.0.7"), Call).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("home address 10.0.0.7 is not in the home prefix 192.0.2.0/24", e.Status.Detail);
        Assert.Equal("home_address", BadField(e));

        e = await Assert.ThrowsAsync<RpcException>(() => alice.RegisterAsync(Request(device: "x\ny"), Call).ResponseAsync);
        Assert.Equal("device_id", BadField(e));

        RegisterRequest ports = Request();
        ports.Traffic = new TrafficSelection { TcpPorts = { 25, 70000 } };
        e = await Assert.ThrowsAsync<RpcException>(() => alice.RegisterAsync(ports, Call).ResponseAsync);
        Assert.Equal("traffic.tcp_ports[1]", BadField(e));
    }

    [Fact]
    public async Task A_care_of_address_on_the_home_network_is_a_failed_precondition()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => ha.Alice.RegisterAsync(Request("192.0.2.50"), Call).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("care-of address 192.0.2.50 is on the home network 192.0.2.0/24: the laptop is home, deregister instead", e.Status.Detail);
        Assert.Equal("AT_HOME", e.GetRpcStatus()!.GetDetail<ErrorInfo>()!.Reason);
    }

    /// <summary>
    /// The server refused the client's certificate in the TLS handshake. TLS 1.3 checks the client's
    /// certificate after the client has finished its side of the handshake, so the client sees the
    /// refusal either in the handshake (Unavailable) or as the server closing the connection before
    /// the HTTP/2 preface ("the server did not complete the HTTP/2 handshake", which Grpc.Net.Client
    /// reports as Internal), depending on timing. Either way no call reached the service.
    /// </summary>
    internal static void AssertHandshakeRefused(RpcException e)
    {
        Assert.True(e.StatusCode == StatusCode.Unavailable ||
            (e.StatusCode == StatusCode.Internal && e.Status.Detail.Contains("did not complete the HTTP/2 handshake", StringComparison.Ordinal)), e.ToString());
    }

    private static string? BadField(RpcException e) =>
        e.GetRpcStatus()?.GetDetail<BadRequest>()?.FieldViolations.Single().Field;

    private static Core.BindingTable Table(TestHomeAgent ha) =>
        (Core.BindingTable)ha.App.Services.GetService(typeof(Core.BindingTable))!;
}
