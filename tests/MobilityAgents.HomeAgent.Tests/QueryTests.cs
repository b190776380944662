using Google.Rpc;
using Grpc.Core;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.HomeAgent.Tests.TestHomeAgent;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>"Is this user's laptop reachable?": GetBinding, ListBindings, WatchBindings and who may call them.</summary>
public sealed class QueryTests(TestPki pki)
{
    [Fact]
    public async Task GetBinding_says_whether_a_users_laptop_is_reachable_until_its_lifetime_ends()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client app = ha.Operator;

        Binding b = await app.GetBindingAsync(new GetBindingRequest { Identity = "alice" }, Call);
        Assert.False(b.Reachable); // authorized, not registered
        Assert.Equal("alice", b.Identity);
        Assert.Equal(Alice1, b.HomeAddress);
        Assert.Equal("", b.CareOfAddress);

        RegisterReply r = await ha.Alice.RegisterAsync(Request(lifetime: 30), Call);
        b = await app.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call);
        Assert.True(b.Reachable);
        Assert.Equal(r.BindingId, b.BindingId);
        Assert.Equal("alice", b.Identity);
        Assert.Equal("laptop", b.DeviceId);
        Assert.Equal(CareOfA, b.CareOfAddress);
        Assert.Equal(Encapsulation.IpipUdp, b.Encapsulation); // registered through "NAT" (from 127.0.0.1)
        Assert.Equal(ha.Time.GetUtcNow().ToUnixTimeSeconds(), b.RegisteredAt);
        Assert.Equal(b.RegisteredAt + 30, b.ExpiresAt);
        Assert.True((await app.GetBindingAsync(new GetBindingRequest { Identity = "alice" }, Call)).Reachable);

        ha.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.True((await app.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call)).Reachable);
        ha.Time.Advance(TimeSpan.FromSeconds(2));
        b = await app.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call);
        Assert.False(b.Reachable);
        Assert.Equal("alice", b.Identity);
    }

    [Fact]
    public async Task A_laptop_reads_its_own_binding_but_not_another_identitys()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice;
        await ha.Bob.RegisterAsync(Request(CareOfB), Call);
        await alice.RegisterAsync(Request(), Call);

        Assert.True((await alice.GetBindingAsync(new GetBindingRequest { Identity = "alice" }, Call)).Reachable);
        Assert.True((await alice.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call)).Reachable);
        Assert.False((await alice.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice2 }, Call)).Reachable);

        foreach (GetBindingRequest other in new[] { new GetBindingRequest { Identity = "bob" }, new GetBindingRequest { HomeAddress = Bob1 }, new GetBindingRequest { HomeAddress = "192.0.2.99" } })
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(() => alice.GetBindingAsync(other, Call).ResponseAsync);
            Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
            Assert.StartsWith("identity alice may read only its own binding", e.Status.Detail, StringComparison.Ordinal);
            Assert.Equal("NOT_OPERATOR", e.GetRpcStatus()!.GetDetail<ErrorInfo>()!.Reason);
        }

        RpcException list = await Assert.ThrowsAsync<RpcException>(() => alice.ListBindingsAsync(new ListBindingsRequest(), Call).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, list.StatusCode);
        Assert.Equal("identity alice may not call ListBindings: it is for identities listed in Operators (any identity may GetBinding its own binding)", list.Status.Detail);

        using AsyncServerStreamingCall<BindingEvent> watch = alice.WatchBindings(new WatchBindingsRequest(), Call);
        RpcException w = await Assert.ThrowsAsync<RpcException>(() => watch.ResponseStream.NextAsync());
        Assert.Equal(StatusCode.PermissionDenied, w.StatusCode);
    }

    [Fact]
    public async Task An_operator_reads_everything_and_gets_not_found_for_what_nobody_holds()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client app = ha.Operator;
        await ha.Bob.RegisterAsync(Request(CareOfB), Call);
        await ha.Alice.RegisterAsync(Request(home: Alice2), Call);

        ListBindingsReply all = await app.ListBindingsAsync(new ListBindingsRequest(), Call);
        Assert.Equal([Alice2, Bob1], all.Bindings.Select(b => b.HomeAddress));
        Assert.All(all.Bindings, b => Assert.True(b.Reachable));

        RpcException e = await Assert.ThrowsAsync<RpcException>(() => app.GetBindingAsync(new GetBindingRequest { HomeAddress = "192.0.2.99" }, Call).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Equal("no identity is authorized for home address 192.0.2.99", e.Status.Detail);

        e = await Assert.ThrowsAsync<RpcException>(() => app.GetBindingAsync(new GetBindingRequest { Identity = "mallory" }, Call).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Equal("identity mallory is not authorized for any home address", e.Status.Detail);

        e = await Assert.ThrowsAsync<RpcException>(() => app.GetBindingAsync(new GetBindingRequest(), Call).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("home_address", e.GetRpcStatus()!.GetDetail<BadRequest>()!.FieldViolations.Single().Field);
    }

    [Fact]
    public async Task WatchBindings_streams_existing_bindings_then_created_moved_refreshed_deregistered_and_expired()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice;
        await ha.Bob.RegisterAsync(Request(CareOfB), Call);

        using AsyncServerStreamingCall<BindingEvent> watch = ha.Operator.WatchBindings(new WatchBindingsRequest { IncludeExisting = true }, Call);
        BindingEvent e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Existing, e.Kind);
        Assert.Equal(Bob1, e.Binding.HomeAddress);

        RegisterReply r = await alice.RegisterAsync(Request(CareOfA), Call);
        e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Created, e.Kind);
        Assert.Equal(r.BindingId, e.Binding.BindingId);
        Assert.Equal(CareOfA, e.Binding.CareOfAddress);

        await alice.RegisterAsync(Request(CareOfB), Call);
        e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Moved, e.Kind);
        Assert.Equal(r.BindingId, e.Binding.BindingId);
        Assert.Equal(CareOfB, e.Binding.CareOfAddress);

        using (AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = alice.Heartbeat(Call))
        {
            await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = r.BindingId }, Ct);
            Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, (await hb.ResponseStream.NextAsync()).Notice);
        }

        e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Refreshed, e.Kind);

        await alice.DeregisterAsync(new DeregisterRequest { BindingId = r.BindingId }, Call);
        e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Deregistered, e.Kind);
        Assert.Equal(r.BindingId, e.Binding.BindingId);
        Assert.False(e.Binding.Reachable);

        ha.Time.Advance(TimeSpan.FromSeconds(91)); // bob's binding lapses
        e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Expired, e.Kind);
        Assert.Equal(Bob1, e.Binding.HomeAddress);
        Assert.False(e.Binding.Reachable);
    }

    [Fact]
    public async Task A_watch_without_existing_sees_only_new_events_and_ends_unavailable_at_shutdown()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        await ha.Bob.RegisterAsync(Request(CareOfB), Call);
        using AsyncServerStreamingCall<BindingEvent> watch = ha.Operator.WatchBindings(new WatchBindingsRequest(), Call);
        await watch.ResponseHeadersAsync.WaitAsync(StreamExtensions.Timeout, Ct); // subscribed
        await ha.Alice.RegisterAsync(Request(), Call);
        BindingEvent e = await watch.ResponseStream.NextAsync();
        Assert.Equal(BindingEvent.Types.Kind.Created, e.Kind);
        Assert.Equal(Alice1, e.Binding.HomeAddress);

        Task stopping = ha.App.StopAsync(TestContext.Current.CancellationToken);
        RpcException end = await Assert.ThrowsAsync<RpcException>(() => watch.ResponseStream.NextAsync());
        Assert.Equal(StatusCode.Unavailable, end.StatusCode);
        Assert.Equal("the home agent is shutting down: reconnect when it is back", end.Status.Detail);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
    }
}
