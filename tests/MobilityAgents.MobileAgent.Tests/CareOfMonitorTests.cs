using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.Netlink;
using static MobilityAgents.MobileAgent.Tests.Lab;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>Movement detection alone, in the lab's laptop namespace (no home agent needed).</summary>
public sealed class CareOfMonitorTests(TestPki pki)
{
    private static CareOfMonitor Start(NetworkNamespace netns, TimeProvider time)
    {
        var m = new CareOfMonitor(netns, IPAddress.Parse(HomeAgentAddress), "ma-tun0", time, AgentTimers.Default, NullLogger.Instance);
        m.Start();
        return m;
    }

    [Fact]
    public async Task The_care_of_address_is_the_source_the_kernel_picks_and_a_move_is_signalled()
    {
        await using Lab lab = await Lab.StartAsync(pki, startHomeAgent: false);
        using NetworkNamespace netns = NetworkNamespace.OpenByName(lab.Laptop);
        await using CareOfMonitor m = Start(netns, TimeProvider.System);
        CareOf at = m.Current;
        Assert.Equal(IPAddress.Parse(CareOfA), at.Address);
        Assert.Equal(IPAddress.Parse(GatewayA), at.Gateway);

        lab.MoveToB();
        await Eventually.True(() => at.Changed.IsCancellationRequested && Equals(m.Current.Address, IPAddress.Parse(CareOfB)), () => $"now {m.Current}");
        Assert.Equal(IPAddress.Parse(GatewayB), m.Current.Gateway);

        lab.InLaptop("address", "del", CareOfB + "/24", "dev", "lap0");
        CareOf atB = m.Current;
        await Eventually.True(() => atB.Changed.IsCancellationRequested && m.Current.Address is null, () => $"now {m.Current}");
    }

    [Fact]
    public async Task Events_are_debounced_on_the_agents_clock()
    {
        await using Lab lab = await Lab.StartAsync(pki, startHomeAgent: false);
        using NetworkNamespace netns = NetworkNamespace.OpenByName(lab.Laptop);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using CareOfMonitor m = Start(netns, clock);
        CareOf at = m.Current;

        lab.MoveToB();
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.False(at.Changed.IsCancellationRequested); // the burst's window has not ended on the agent's clock
        clock.Advance(AgentTimers.Default.MovementDebounce);
        await Eventually.True(() => at.Changed.IsCancellationRequested, () => $"now {m.Current}");
        Assert.Equal(IPAddress.Parse(CareOfB), m.Current.Address);
    }

    [Fact]
    public async Task Our_own_pin_route_does_not_hide_the_visited_networks_router()
    {
        await using Lab lab = await Lab.StartAsync(pki, startHomeAgent: false);
        using NetworkNamespace netns = NetworkNamespace.OpenByName(lab.Laptop);
        // What the reconciler installs with HomePrefixThroughTunnel: the home agent pinned to network A's router.
        lab.InLaptop("route", "add", HomeAgentAddress + "/32", "via", GatewayA, "proto", "77");
        await using CareOfMonitor m = Start(netns, TimeProvider.System);
        Assert.Equal(IPAddress.Parse(GatewayA), m.Current.Gateway);

        lab.MoveToB(); // the pin may outlive network A; the router to re-pin via is B's
        await Eventually.True(() => Equals(m.Current.Address, IPAddress.Parse(CareOfB)), () => $"now {m.Current}; routes: {lab.InLaptop("route")}");
        Assert.Equal(IPAddress.Parse(GatewayB), m.Current.Gateway);
    }
}
