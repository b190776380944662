using System.Diagnostics;
using System.Net;
using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.MobileAgent.Tests.Lab;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>
/// Moves, simulated in the laptop's namespace by an independent actor (<c>ip addr</c>,
/// <c>ip route</c>), seen by the agent from netlink events only.
/// </summary>
public sealed class MovementTests(TestPki pki)
{
    [Fact]
    public async Task A_new_care_of_address_re_registers_from_it_over_a_fresh_connection_and_moves_the_tunnel_in_place()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        Binding before = (await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered at A"))[0];
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");
        Assert.Equal(CareOfA, before.CareOfAddress);

        var moving = Stopwatch.StartNew();
        lab.MoveToB();
        Binding after = (await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].CareOfAddress == CareOfB, "the binding follows the laptop to B"))[0];
        Assert.True(moving.Elapsed < TimeSpan.FromSeconds(5), $"the move took {moving.Elapsed} to reach the home agent");
        Assert.Equal(before.BindingId, after.BindingId); // the same binding, re-pointed

        // The new registration and heartbeats really come from the new address...
        await Eventually.True(() => lab.HomeAgent!.Stdout.Contains($"Heartbeat stream opened by alice from ipv4:{CareOfB}:", StringComparison.Ordinal),
            () => "no heartbeat stream from the new address" + lab.Report());
        // ...and the connection from the old one was abandoned, not left to time out.
        Assert.DoesNotContain(CareOfA + ":", Established(lab.Laptop), StringComparison.Ordinal);

        // The kernel state moved in place: the new care-of and router, never a teardown in between.
        await Eventually.True(() => Equals(a.Kernel.Current, AgentTests.AliceAt(CareOfB, GatewayB)), () => "kernel not moved" + lab.Report());
        Assert.DoesNotContain(null, a.Kernel.Applied);
        Assert.Contains(a.Logs.Entries, e => e.Id == 2301); // moved
        Assert.Equal(AgentState.Registered, a.Agent.State);
        Assert.Equal(IPAddress.Parse(CareOfB), a.Agent.CareOfAddress);
    }

    [Fact]
    public async Task Losing_every_route_keeps_the_tunnel_until_an_address_comes_back()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered at A");
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");

        lab.InLaptop("address", "del", CareOfA + "/24", "dev", "lap0"); // out of coverage
        await Eventually.True(() => a.Agent.State == AgentState.NoRoute, () => $"state {a.Agent.State}{lab.Report()}");
        Assert.NotNull(a.Kernel.Current); // within the lifetime, the tunnel stays

        lab.InLaptop("address", "add", CareOfB + "/24", "dev", "lap0");
        lab.InLaptop("route", "replace", "default", "via", GatewayB);
        await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].CareOfAddress == CareOfB, "re-registered from B");
        await Eventually.True(() => Equals(a.Kernel.Current, AgentTests.AliceAt(CareOfB, GatewayB)), () => "kernel not moved" + lab.Report());
    }

    [Fact]
    public async Task Coming_home_deregisters_and_removes_the_tunnel_and_leaving_again_registers()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered at A");
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");

        // On the home LAN: the route to the home agent is the home prefix itself.
        lab.InLaptop("address", "add", "192.0.2.50/24", "dev", "lap0");
        lab.InLaptop("address", "del", CareOfA + "/24", "dev", "lap0");
        await lab.BindingsWhenAsync(l => l.Count == 0, "deregistered at home");
        await Eventually.True(() => a.Agent.State == AgentState.AtHome && a.Kernel.Current is null, () => $"state {a.Agent.State}{lab.Report()}");
        Assert.Null(a.Kernel.Applied[^1]);

        // Out again.
        lab.InLaptop("address", "add", CareOfB + "/24", "dev", "lap0");
        lab.InLaptop("route", "replace", "default", "via", GatewayB);
        lab.InLaptop("address", "del", "192.0.2.50/24", "dev", "lap0");
        await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].CareOfAddress == CareOfB, "registered from B");
        await Eventually.True(() => Equals(a.Kernel.Current, AgentTests.AliceAt(CareOfB, GatewayB)), () => "no tunnel" + lab.Report());
    }

    [Fact]
    public async Task Starting_at_home_registers_nothing_until_the_laptop_leaves()
    {
        await using Lab lab = await StartAsync(pki);
        lab.InLaptop("address", "add", "192.0.2.50/24", "dev", "lap0");
        lab.InLaptop("address", "del", CareOfA + "/24", "dev", "lap0");
        TestAgent a = await lab.StartAgentAsync();

        // The home agent says AT_HOME (the agent does not know the home prefix before a reply).
        await Eventually.True(() => a.Agent.State == AgentState.AtHome, () => $"state {a.Agent.State}{lab.Report()}");
        Assert.Equal([null], a.Kernel.Applied); // what a previous run may have left is removed
        Assert.Empty(await lab.BindingsAsync());

        lab.InLaptop("address", "add", CareOfA + "/24", "dev", "lap0");
        lab.InLaptop("route", "replace", "default", "via", GatewayA);
        lab.InLaptop("address", "del", "192.0.2.50/24", "dev", "lap0");
        await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].CareOfAddress == CareOfA, "registered from A");
        await Eventually.True(() => Equals(a.Kernel.Current, AgentTests.AliceAt(CareOfA, GatewayA)), () => "no tunnel" + lab.Report());
    }

    /// <summary>Local addresses of established TCP connections in a namespace (<c>ss -tn state established</c>).</summary>
    private static string Established(string netns)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "netns", "exec", netns, "ss", "-Htn", "state", "established" })
        {
            psi.ArgumentList.Add(arg);
        }

        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output;
    }
}
