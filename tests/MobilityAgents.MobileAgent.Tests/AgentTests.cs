using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Time.Testing;
using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.Protocol.V1;
using MobilityAgents.Reconciler;
using static MobilityAgents.MobileAgent.Tests.Lab;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>
/// The mobile agent against the real home agent daemon over real mutual TLS: registration,
/// heartbeats, the home agent's notices, outages, and a clean stop.
/// </summary>
public sealed class AgentTests(TestPki pki)
{
    /// <summary>What the kernel should hold for alice at network A (the reply's values and the default configuration).</summary>
    public static MobileAgentState AliceAt(string careOf, string gateway) =>
        new(IPAddress.Parse(careOf), IPAddress.Parse(HomeAgentAddress), IPAddress.Parse(AliceHome), IPNetwork.Parse(HomePrefix))
        {
            TunnelMtu = 1480,
            TunnelName = "ma-tun0",
            VisitedGateway = IPAddress.Parse(gateway),
        };

    [Fact]
    public async Task Registers_on_start_from_the_address_the_kernel_picks_and_programs_what_the_reply_calls_for()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();

        IReadOnlyList<Binding> bindings = await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        Binding b = bindings[0];
        Assert.Equal("alice", b.Identity);
        Assert.Equal("alice-laptop", b.DeviceId);
        Assert.Equal(AliceHome, b.HomeAddress);
        Assert.Equal(CareOfA, b.CareOfAddress); // found by the agent itself: ip route get 192.0.2.1 from the laptop
        Assert.True(b.Reachable);

        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}{lab.Report()}");
        Assert.Equal(b.BindingId, a.Agent.BindingId);
        // The first kernel write is the registration's state: nothing found at start is torn down first.
        Assert.Equal([AliceAt(CareOfA, GatewayA)], a.Kernel.Applied);
    }

    [Fact]
    public async Task Heartbeats_keep_the_binding_alive_past_its_lifetime()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync(k => k["LifetimeSeconds"] = "3"); // heartbeat every 1 s
        Binding first = (await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered"))[0];

        // expires_at (whole seconds) moves on with the heartbeats...
        await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].ExpiresAt > first.ExpiresAt + 1, "expires_at moved on");

        // ...and the binding outlives its 3 s lifetime, the same binding throughout.
        await Task.Delay(TimeSpan.FromSeconds(4), TestContext.Current.CancellationToken);
        Binding later = (await lab.BindingsAsync()).Single();
        Assert.Equal(first.BindingId, later.BindingId);
        Assert.True(later.Reachable);
        Assert.True(a.Logs.Entries.Count(e => e.Id == 2200) >= 3, lab.Report()); // refreshed
        Assert.Equal(AgentState.Registered, a.Agent.State);
        Assert.DoesNotContain(null, a.Kernel.Applied);
    }

    [Fact]
    public async Task A_kernel_write_slower_than_the_lifetime_does_not_hold_up_the_heartbeats()
    {
        // A loaded VM: programming the tunnel takes longer than the whole granted lifetime (3 s).
        await using Lab lab = await StartAsync(pki, lifetimeSeconds: 3);
        var kernel = new RecordingKernelWriter { SlowApply = TimeSpan.FromSeconds(5) };
        TestAgent a = await lab.StartAgentAsync(k => k["LifetimeSeconds"] = "3", kernel: kernel); // heartbeat every 1 s
        Binding first = (await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered"))[0];

        // While the kernel is still being written, the heartbeats refresh the binding at the home agent...
        await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].BindingId == first.BindingId && l[0].ExpiresAt > first.ExpiresAt + 1,
            "expires_at moved on during the kernel write");
        Assert.Empty(kernel.Applied);
        Assert.Equal(1, kernel.InProgress);

        // ...and once it is done the agent is registered with that same binding: no lapse, no teardown, no second registration.
        await Eventually.True(() => kernel.Applied.Count == 1 && a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}{lab.Report()}");
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        Binding later = (await lab.BindingsAsync()).Single();
        Assert.Equal(first.BindingId, later.BindingId);
        Assert.Equal(first.BindingId, a.Agent.BindingId);
        Assert.Equal(AgentState.Registered, a.Agent.State);
        Assert.Equal([AliceAt(CareOfA, GatewayA)], kernel.Applied);
        Assert.False(a.Logs.Has(2106), lab.Report()); // never lapsed
        Assert.Equal(1, a.Logs.Entries.Count(e => e.Id == 2100)); // registered once
        Assert.False(kernel.Overlapped);
    }

    [Fact]
    public async Task A_home_agent_restart_keeps_the_tunnel_and_the_agent_registers_with_the_new_process()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");

        await lab.StopHomeAgentAsync("TERM"); // SIGTERM: NOTICE_SHUTTING_DOWN on the heartbeat stream
        await Eventually.True(() => a.Logs.Entries.Any(e => e.Id == 2201 && e.Message.Contains("ShuttingDown", StringComparison.Ordinal)),
            () => "no SHUTTING_DOWN notice" + lab.Report());
        await Eventually.True(() => a.Agent.State == AgentState.Reconnecting, () => $"state {a.Agent.State}{lab.Report()}");
        Assert.Equal(AliceAt(CareOfA, GatewayA), a.Kernel.Current); // the tunnel stays

        await lab.StartHomeAgentAsync(); // same port
        Binding b = (await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered with the new home agent"))[0];
        Assert.Equal(CareOfA, b.CareOfAddress);
        await Eventually.True(() => a.Agent.State == AgentState.Registered && a.Agent.BindingId == b.BindingId, () => $"state {a.Agent.State}{lab.Report()}");
        Assert.DoesNotContain(null, a.Kernel.Applied); // never torn down
        Assert.Equal(AliceAt(CareOfA, GatewayA), a.Kernel.Current);
    }

    [Fact]
    public async Task An_unreachable_home_agent_keeps_the_tunnel_for_the_lifetime_then_it_is_removed_and_the_agent_keeps_trying()
    {
        await using Lab lab = await StartAsync(pki, lifetimeSeconds: 3);
        TestAgent a = await lab.StartAgentAsync(k => k["LifetimeSeconds"] = "3");
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");

        var sinceKill = Stopwatch.StartNew();
        await lab.StopHomeAgentAsync("KILL"); // gone without a word
        await Eventually.True(() => a.Agent.State == AgentState.Reconnecting, () => $"state {a.Agent.State}{lab.Report()}");
        await Eventually.True(() => a.Kernel.Current is null, () => "the tunnel outlived its binding" + lab.Report(), TimeSpan.FromSeconds(10));
        TimeSpan keptFor = sinceKill.Elapsed;
        Assert.True(keptFor > TimeSpan.FromSeconds(0.8), $"torn down after {keptFor}: the lifetime was not honoured");
        Assert.True(keptFor < TimeSpan.FromSeconds(5), $"torn down after {keptFor}: later than the 3 s lifetime");
        Assert.True(a.Logs.Has(2106), lab.Report()); // binding lapsed
        Assert.Equal(AgentState.Registering, a.Agent.State);

        // It keeps trying (backoff with jitter) and comes back when the home agent does.
        await lab.StartHomeAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered again");
        await Eventually.True(() => a.Kernel.Current is not null, () => "no tunnel after re-registering" + lab.Report());
        Assert.Equal(AliceAt(CareOfA, GatewayA), a.Kernel.Current);
    }

    [Fact]
    public async Task The_tunnel_is_kept_for_exactly_the_granted_lifetime_on_the_agents_clock()
    {
        await using Lab lab = await StartAsync(pki);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TestAgent a = await lab.StartAgentAsync(time: clock); // lifetime 6 s on the fake clock
        await Eventually.True(() => a.Agent.State == AgentState.Registered && a.Logs.Has(2200), () => $"state {a.Agent.State}{lab.Report()}");

        await lab.StopHomeAgentAsync("KILL");
        await Eventually.True(() => a.Agent.State == AgentState.Reconnecting, () => $"state {a.Agent.State}{lab.Report()}");

        // Reconnect attempts go on (their backoff is on the same clock), the tunnel stays...
        clock.Advance(TimeSpan.FromSeconds(5.5));
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.NotNull(a.Kernel.Current);
        Assert.Equal(AgentState.Reconnecting, a.Agent.State);

        // ...until the lifetime granted (6 s from the last refresh) has passed.
        clock.Advance(TimeSpan.FromSeconds(0.6));
        await Eventually.True(() => a.Kernel.Current is null, () => "not torn down at the end of the lifetime" + lab.Report());
        Assert.True(a.Logs.Has(2106), lab.Report());
    }

    [Fact]
    public async Task A_silent_home_agent_is_noticed_by_unanswered_heartbeats()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync(); // lifetime 6 s, a heartbeat every 2 s
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");

        lab.HomeAgent!.Signal("STOP"); // the connection stays open, nothing answers
        try
        {
            // Noticed within one heartbeat interval (then it reconnects with backoff), well before the lifetime ends.
            await Eventually.True(() => a.Logs.Entries.Any(e => e.Id == 2202 && e.Message.Contains("no heartbeat reply", StringComparison.Ordinal)),
                () => "unanswered heartbeats not noticed" + lab.Report(), TimeSpan.FromSeconds(6));
            Assert.NotNull(a.Kernel.Current);
            await Eventually.True(() => a.Kernel.Current is null, () => "the tunnel outlived its binding" + lab.Report(), TimeSpan.FromSeconds(10));
        }
        finally
        {
            lab.HomeAgent.Signal("CONT");
        }

        // The home agent wakes up (its binding has expired): the agent registers again.
        await Eventually.True(() => a.Agent.State == AgentState.Registered && a.Kernel.Current is not null, () => $"state {a.Agent.State}{lab.Report()}");
    }

    [Fact]
    public async Task Another_device_taking_the_home_address_makes_the_agent_remove_the_tunnel_and_stop_with_status_3()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => a.Agent.State == AgentState.Registered && a.Kernel.Current is not null, () => $"state {a.Agent.State}");

        // alice's phone registers the same home address from elsewhere.
        RegisterReply phone = await lab.Client(pki.Alice).RegisterAsync(
            new RegisterRequest { CareOfAddress = "203.0.113.50", DeviceId = "alice-phone" }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: TestContext.Current.CancellationToken);

        await a.Run.WaitAsync(Lab.Timeout, TestContext.Current.CancellationToken); // the agent stops the host itself
        Assert.Equal(MobileAgentHost.ExitBindingReplaced, a.Agent.ExitCode);
        Assert.Equal(AgentState.Stopped, a.Agent.State);
        Assert.Null(a.Kernel.Current);
        Assert.True(a.Logs.Has(2107), lab.Report());

        // It did not take the address back, nor deregister the phone's binding.
        Binding b = (await lab.BindingsAsync()).Single();
        Assert.Equal(phone.BindingId, b.BindingId);
        Assert.Equal("alice-phone", b.DeviceId);
    }

    [Fact]
    public async Task A_clean_stop_deregisters_and_removes_everything()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => a.Kernel.Current is not null, () => "no tunnel" + lab.Report());

        var stopping = Stopwatch.StartNew();
        await a.StopAsync();
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"stop took {stopping.Elapsed}");
        Assert.Equal(MobileAgentHost.ExitClean, a.Agent.ExitCode);
        Assert.Equal(AgentState.Stopped, a.Agent.State);
        Assert.Null(a.Kernel.Applied[^1]);
        Assert.True(a.Logs.Has(2104), lab.Report()); // deregistered
        Assert.Empty(await lab.BindingsAsync());
    }

    [Fact]
    public async Task A_clean_stop_does_not_wait_long_for_an_unreachable_home_agent()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");
        lab.HomeAgent!.Signal("STOP");
        try
        {
            var stopping = Stopwatch.StartNew();
            await a.StopAsync();
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(4), $"stop took {stopping.Elapsed}: Deregister is bounded by 2 s");
            Assert.Equal(MobileAgentHost.ExitClean, a.Agent.ExitCode);
            Assert.Null(a.Kernel.Applied[^1]);
            Assert.True(a.Logs.Has(2105), lab.Report()); // could not deregister
        }
        finally
        {
            lab.HomeAgent.Signal("CONT");
        }
    }

    [Fact]
    public async Task A_restart_keeps_what_a_previous_run_left_until_a_registration_confirms_it_or_the_window_ends()
    {
        await using Lab lab = await StartAsync(pki, startHomeAgent: false);
        lab.UsePort(40000 + Random.Shared.Next(20000));
        TestAgent a = await lab.StartAgentAsync(timers: FastTimers with { AdoptionWindow = TimeSpan.FromSeconds(2) });

        // The home agent is unreachable: whatever a crashed run left stays (no kernel write at all)...
        await Eventually.True(() => a.Logs.Has(2101), () => "no registration attempt" + lab.Report());
        Assert.Empty(a.Kernel.Applied);
        // ...until the window ends: then it is swept.
        await Eventually.True(() => a.Kernel.Applied.Count == 1, () => "not swept" + lab.Report(), TimeSpan.FromSeconds(6));
        Assert.Null(a.Kernel.Applied[0]);
        Assert.True(a.Logs.Has(2108), lab.Report());

        await lab.StartHomeAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered once the home agent is up");
        await Eventually.True(() => a.Kernel.Current is not null, () => "no tunnel" + lab.Report());
        Assert.Equal(AliceAt(CareOfA, GatewayA), a.Kernel.Current);
    }

    [Fact]
    public async Task A_registration_refused_for_good_stops_the_agent_with_status_77()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync(k =>
        {
            k["Certificate"] = pki.BobPem;
            k["PrivateKey"] = pki.BobKey;
            k["HomeAddress"] = AliceHome; // bob may not claim alice's address
        });

        await a.Run.WaitAsync(Lab.Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(MobileAgentHost.ExitRefused, a.Agent.ExitCode);
        Assert.Contains(a.Logs.Entries, e => e.Id == 2102 && e.Message.Contains("NOT_AUTHORIZED", StringComparison.Ordinal));
        Assert.Equal([null], a.Kernel.Applied);
        Assert.Empty(await lab.BindingsAsync());
    }

    [Fact]
    public async Task A_home_agent_certificate_from_another_CA_is_refused_and_nothing_is_registered()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync(k => k["Ca"] = pki.ForeignCaPem);

        await Eventually.True(() => a.Logs.Has(2109) && a.Logs.Entries.Count(e => e.Id == 2101) >= 2, () => "no rejection" + lab.Report());
        Assert.Contains(a.Logs.Entries, e => e.Id == 2109 && e.Message.Contains("does not chain to Ca", StringComparison.Ordinal));
        Assert.Equal(AgentState.Registering, a.Agent.State);
        Assert.Empty(await lab.BindingsAsync());
        Assert.Empty(a.Kernel.Applied);
    }

    [Fact]
    public async Task The_home_agent_sees_the_registration_come_from_the_care_of_address()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered");
        await Eventually.True(() => lab.HomeAgent!.Stdout.Contains($"Heartbeat stream opened by alice from ipv4:{CareOfA}:", StringComparison.Ordinal),
            () => "no heartbeat stream from the care-of address" + lab.Report());
        Assert.Equal(IPAddress.Parse(CareOfA), a.Agent.CareOfAddress);
    }

    [Fact]
    public async Task The_home_agent_refusing_a_deregistration_of_a_binding_it_lost_is_not_an_error_at_stop()
    {
        await using Lab lab = await StartAsync(pki);
        TestAgent a = await lab.StartAgentAsync();
        Binding b = (await lab.BindingsWhenAsync(l => l.Count == 1, "alice registered"))[0];
        await Eventually.True(() => a.Agent.State == AgentState.Registered, () => $"state {a.Agent.State}");

        // Someone (an operator tool with alice's key) ends the binding: the next heartbeat hears REREGISTER.
        await lab.Client(pki.Alice).DeregisterAsync(new DeregisterRequest { BindingId = b.BindingId }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: TestContext.Current.CancellationToken);
        await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].BindingId != b.BindingId, "alice registered again after REREGISTER");
        Assert.Contains(a.Logs.Entries, e => e.Id == 2201 && e.Message.Contains("Reregister", StringComparison.Ordinal));
        Assert.DoesNotContain(null, a.Kernel.Applied);

        await a.StopAsync();
        Assert.Equal(MobileAgentHost.ExitClean, a.Agent.ExitCode);
        Assert.Empty(await lab.BindingsAsync());
    }
}
