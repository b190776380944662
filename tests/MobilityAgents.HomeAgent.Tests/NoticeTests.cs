using System.Diagnostics;
using Grpc.Core;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.HomeAgent.Tests.TestHomeAgent;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>What the home agent tells laptops on their heartbeat stream without being asked.</summary>
public sealed class NoticeTests(TestPki pki)
{
    [Fact]
    public async Task The_old_device_hears_its_binding_was_replaced_by_another_device()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client laptopA = ha.Alice, laptopB = ha.Alice;
        RegisterReply a = await laptopA.RegisterAsync(Request(CareOfA, device: "laptop-a"), Call);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = laptopA.Heartbeat(Call);
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = a.BindingId }, Ct);
        Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, (await hb.ResponseStream.NextAsync()).Notice);

        RegisterReply b = await laptopB.RegisterAsync(Request(CareOfB, device: "laptop-b"), Call);
        Assert.NotEqual(a.BindingId, b.BindingId);

        HeartbeatReply notice = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.BindingReplaced, notice.Notice);
        Assert.Equal(a.BindingId, notice.BindingId);
        Assert.Contains("laptop-b", notice.Reason, StringComparison.Ordinal);

        // A late heartbeat for the replaced binding hears "replaced" again, not "register again"
        // (which would make the two laptops take the address from each other forever).
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = a.BindingId }, Ct);
        Assert.Equal(HeartbeatReply.Types.Notice.BindingReplaced, (await hb.ResponseStream.NextAsync()).Notice);

        Binding now = await ha.Operator.GetBindingAsync(new GetBindingRequest { HomeAddress = Alice1 }, Call);
        Assert.Equal(b.BindingId, now.BindingId);
        Assert.Equal("laptop-b", now.DeviceId);
        Assert.Equal(CareOfB, now.CareOfAddress);
    }

    [Fact]
    public async Task Every_open_stream_hears_the_agent_is_shutting_down_before_the_server_stops()
    {
        await using TestHomeAgent ha = await StartAsync(pki);
        Client alice = ha.Alice, bob = ha.Bob;
        RegisterReply ra = await alice.RegisterAsync(Request(), Call);
        RegisterReply rb = await bob.RegisterAsync(Request(CareOfB), Call);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hbA = alice.Heartbeat(Call);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hbB = bob.Heartbeat(Call);
        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> idle = alice.Heartbeat(Call); // never sent a heartbeat
        await hbA.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = ra.BindingId }, Ct);
        await hbB.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = rb.BindingId }, Ct);
        Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, (await hbA.ResponseStream.NextAsync()).Notice);
        Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, (await hbB.ResponseStream.NextAsync()).Notice);
        await WaitForStreamsAsync(ha, 3);

        var stopwatch = Stopwatch.StartNew();
        Task stopping = ha.App.StopAsync(TestContext.Current.CancellationToken);
        foreach (AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb in new[] { hbA, hbB, idle })
        {
            HeartbeatReply notice = await hb.ResponseStream.NextAsync();
            Assert.Equal(HeartbeatReply.Types.Notice.ShuttingDown, notice.Notice);
            await hb.RequestStream.CompleteAsync(); // what a mobile agent does on SHUTTING_DOWN
            Assert.True(await hb.ResponseStream.EndsAsync());
            Assert.Equal(StatusCode.OK, hb.GetStatus().StatusCode);
        }

        await stopping.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.True(stopwatch.Elapsed < HomeAgentTimers.ShutdownTimeout, $"stop took {stopwatch.Elapsed}: streams held it up");
    }

    /// <summary>Waits (bounded) until the server has accepted <paramref name="n"/> heartbeat streams.</summary>
    internal static async Task WaitForStreamsAsync(TestHomeAgent ha, int n)
    {
        var monitor = (Services.BindingMonitor)ha.App.Services.GetService(typeof(Services.BindingMonitor))!;
        var until = Stopwatch.StartNew();
        while (monitor.OpenStreams < n)
        {
            Assert.True(until.Elapsed < StreamExtensions.Timeout, $"only {monitor.OpenStreams} of {n} heartbeat streams opened");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
