using System.Net;
using System.Net.NetworkInformation;
using MobilityAgents.Core;
using Microsoft.Extensions.Logging;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Reconciler.Tests.Lab;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// The self-heal race: a route monitor reads the kernel's event for a deletion an Apply makes while
/// that Apply still runs, i.e. against the state reached before it. Such an event must not count as
/// someone else's (no warning, no extra Apply); a foreign deletion still must.
/// </summary>
public sealed class SelfDeletionTests
{
    private static readonly HomeAgentTunnel A = Tunnel("binding-a", "192.0.2.10", "198.51.100.2");
    private static readonly HomeAgentTunnel B = Tunnel("binding-b", "192.0.2.11", "203.0.113.2");

    [Fact]
    public void HomeAgent_the_deletions_of_an_Apply_removing_a_binding_are_not_Concerns_while_it_runs_a_foreign_one_is()
    {
        var lab = new Lab();
        var kernel = new EventingKernel(lab.Kernel);
        var rec = new HomeAgentReconciler(kernel);
        HomeAgentReached before = rec.Apply(State(A, B));
        Assert.True(before.Reached(State(A, B)));
        TunnelLink la = before.Links[A.BindingId], lb = before.Links[B.BindingId];
        var routeB = new RouteEntry { Destination = B.HomeAddress, DestinationPrefixLength = 32, OutputInterface = lb.Index, Protocol = Ownership.RouteProtocol };
        var proxyB = new NeighbourEntry { Destination = B.HomeAddress, InterfaceIndex = lab.Lan, Proxy = true, Protocol = Ownership.NeighbourProtocol };

        // As a monitor thread that reads each event the moment the kernel sends it, before Apply returns.
        var ours = new List<(RouteEvent Event, bool Concerns)>();
        var foreign = new List<bool>();
        kernel.Deleted = e =>
        {
            ours.Add((e, Task.Run(() => rec.Concerns(e)).Result));
            foreign.Add(Task.Run(() => rec.Concerns(new RouteChangeEvent(routeB) { Deleted = true })).Result); // B stays: still ours to repair
        };
        HomeAgentReached after = rec.Apply(State(B)); // A expires / deregisters
        kernel.Deleted = null;

        Assert.True(after.Reached(State(B)));
        Assert.Contains(ours, x => x.Event is LinkEvent l && l.Link.Index == la.Index);
        Assert.Contains(ours, x => x.Event is NeighbourEvent n && n.Neighbour.Destination.Equals(A.HomeAddress));
        Assert.Contains(ours, x => x.Event is RouteChangeEvent r && r.Route.Destination.Equals(A.HomeAddress));
        Assert.All(ours, x => Assert.False(x.Concerns, $"our own deletion {x.Event} looked foreign"));
        Assert.NotEmpty(foreign);
        Assert.All(foreign, Assert.True);

        // After the Apply, foreign deletions of what it reached are still reported; its own late events are not.
        Assert.True(rec.Concerns(new LinkEvent(new Link { Index = lb.Index, Name = lb.Name }) { Deleted = true }));
        Assert.True(rec.Concerns(new RouteChangeEvent(routeB) { Deleted = true }));
        Assert.True(rec.Concerns(new NeighbourEvent(proxyB) { Deleted = true }));
        Assert.All(ours, x => Assert.False(rec.Concerns(x.Event)));

        // The teardown (Apply(null)) likewise.
        ours.Clear();
        kernel.Deleted = e => ours.Add((e, Task.Run(() => rec.Concerns(e)).Result));
        rec.Apply(null);
        kernel.Deleted = null;
        Assert.Contains(ours, x => x.Event is LinkEvent l && l.Link.Index == lb.Index);
        Assert.All(ours, x => Assert.False(x.Concerns, $"our own deletion {x.Event} looked foreign"));
    }

    [Fact]
    public async Task MobileAgent_the_deletions_of_a_teardown_are_not_Concerns_while_it_runs_a_foreign_one_is()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentState s = MobileAgentHostLab.State() with { FwMarkSelection = true };
        using var monitor = RouteMonitor.Start(RouteMonitorGroups.All, lab.Laptop.Namespace);
        MobileAgentReconciler? rec = null;
        var ours = new List<(RouteEvent Event, bool Concerns)>();
        int? goingIndex = null;
        var logger = new HookLogger(message =>
        {
            // Inside Apply(null), after its last deletion and before it returns: read the events as the
            // monitor thread would, and judge them on another thread.
            if (goingIndex is not { } index || !message.StartsWith("mobile agent kernel state:", StringComparison.Ordinal))
            {
                return;
            }

            var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (!ours.Any(x => x.Event is LinkEvent { Deleted: true } l && l.Link.Index == index) && DateTime.UtcNow < until)
            {
                while (monitor.Events.TryRead(out RouteEvent? e))
                {
                    if (e.Deleted)
                    {
                        ours.Add((e, Task.Run(() => rec!.Concerns(e)).Result));
                    }
                }

                Thread.Sleep(10);
            }
        });
        rec = new MobileAgentReconciler(lab.Laptop.Handle, lab.Device, logger);
        MobileAgentReached r = rec.Apply(s);
        Assert.True(r.Reached(s));
        await Drain(monitor);

        goingIndex = r.TunnelIndex!.Value;
        MobileAgentReached gone = rec.Apply(null);
        goingIndex = null;
        Assert.Null(gone.State);
        Assert.Contains(ours, x => x.Event is LinkEvent l && l.Link.Index == r.TunnelIndex);
        Assert.Contains(ours, x => x.Event is RuleEvent { Rule.Priority: 10010 });
        Assert.All(ours, x => Assert.False(x.Concerns, $"our own deletion {x.Event} looked foreign"));

        // A foreign deletion of what an Apply reached is still reported.
        r = rec.Apply(s);
        Assert.True(r.Reached(s));
        await Drain(monitor);
        lab.Laptop.Ip("rule", "del", "priority", "10010");
        RouteEvent foreign = await Next(monitor, e => e is RuleEvent { Deleted: true, Rule.Priority: 10010 });
        Assert.True(rec.Concerns(foreign));
    }

    private static async Task Drain(RouteMonitor monitor)
    {
        await Task.Delay(100, TestContext.Current.CancellationToken);
        while (monitor.Events.TryRead(out _))
        {
        }
    }

    private static async Task<RouteEvent> Next(RouteMonitor monitor, Func<RouteEvent, bool> match)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        while (true)
        {
            RouteEvent e = await monitor.Events.ReadAsync(cts.Token);
            if (match(e))
            {
                return e;
            }
        }
    }

    private sealed class HookLogger(Action<string> onLog) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            onLog(formatter(state, exception));
    }

    /// <summary>The fake kernel, reporting each deletion as the events Linux sends for it, synchronously (before the call returns).</summary>
    private sealed class EventingKernel(FakeKernel k) : IHomeAgentKernel
    {
        public Action<RouteEvent>? Deleted { get; set; }

        public IReadOnlyList<Link> ListLinks() => k.ListLinks();

        public IReadOnlyList<RouteEntry> ListRoutes() => k.ListRoutes();

        public IReadOnlyList<NeighbourEntry> ListProxies() => k.ListProxies();

        public int AddIpip(string name, IpipParameters parameters, int mtu, string alias) => k.AddIpip(name, parameters, mtu, alias);

        public void ChangeIpip(int index, IpipParameters parameters) => k.ChangeIpip(index, parameters);

        public void SetMtu(int index, int mtu) => k.SetMtu(index, mtu);

        public void SetUp(int index) => k.SetUp(index);

        public bool DeleteLink(int index)
        {
            Link? link = k.ListLinks().FirstOrDefault(l => l.Index == index);
            List<RouteEntry> routes = [.. k.ListRoutes().Where(r => r.OutputInterface == index)];
            bool done = k.DeleteLink(index);
            if (done && link is not null)
            {
                foreach (RouteEntry r in routes)
                {
                    Deleted?.Invoke(new RouteChangeEvent(r) { Deleted = true });
                }

                Deleted?.Invoke(new LinkEvent(link) { Deleted = true });
            }

            return done;
        }

        public int GetRpFilter(string linkName) => k.GetRpFilter(linkName);

        public void SetRpFilter(string linkName, int mode) => k.SetRpFilter(linkName, mode);

        public bool GetIpForward() => k.GetIpForward();

        public void SetIpForward(bool on) => k.SetIpForward(on);

        public void ReplaceRoute(RouteEntry route) => k.ReplaceRoute(route);

        public bool DeleteRoute(RouteEntry route)
        {
            bool done = k.DeleteRoute(route);
            if (done)
            {
                Deleted?.Invoke(new RouteChangeEvent(route) { Deleted = true });
            }

            return done;
        }

        public void AddProxy(NeighbourEntry entry) => k.AddProxy(entry);

        public bool DeleteProxy(NeighbourEntry entry)
        {
            bool done = k.DeleteProxy(entry);
            if (done)
            {
                Deleted?.Invoke(new NeighbourEvent(entry) { Deleted = true });
            }

            return done;
        }

        public void AnnounceAddress(int interfaceIndex, PhysicalAddress mac, IPAddress address) => k.AnnounceAddress(interfaceIndex, mac, address);
    }
}
