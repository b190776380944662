using System.Globalization;
using System.Net;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>
/// <see cref="RouteMonitor"/> in a namespace, with <c>ip -n</c> as the independent actor making
/// the changes. Reads are bounded by a few seconds (a bound for a missing event, not a timing test).
/// </summary>
public class MonitorTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    /// <summary>Reads events until one of type <typeparamref name="T"/> matches; fails listing what arrived instead.</summary>
    private static async Task<T> Next<T>(RouteMonitor monitor, Func<T, bool> match, string what, List<RouteEvent>? skipped = null)
        where T : RouteEvent
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Bound);
        var seen = new List<RouteEvent>();
        try
        {
            while (true)
            {
                RouteEvent e = await monitor.Events.ReadAsync(cts.Token);
                if (e is T t && match(t))
                {
                    skipped?.AddRange(seen);
                    return t;
                }

                seen.Add(e);
            }
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            Assert.Fail($"no {what} within {Bound.TotalSeconds} s; {seen.Count} other events: {string.Join("; ", seen.Take(20))}");
            throw;
        }
    }

    private static bool IsLink(LinkEvent e, string name, bool deleted) => e.Link.Name == name && e.Deleted == deleted;

    [Fact]
    public async Task Changes_made_by_ip_arrive_as_events_and_deletes_are_flagged()
    {
        using var ns = new TestNamespace();
        using var monitor = RouteMonitor.Start(RouteMonitorGroups.All, ns.Namespace);

        ns.IpCmd("link", "add", "mo0", "type", "veth", "peer", "name", "mo0p");
        LinkEvent link = await Next<LinkEvent>(monitor, e => IsLink(e, "mo0", false), "RTM_NEWLINK mo0");
        Assert.Equal("veth", link.Link.Kind);
        Assert.Equal(Oracle.Link(ns, "mo0").GetProperty("ifindex").GetInt32(), link.Link.Index);
        int mo0 = link.Link.Index;

        ns.IpCmd("link", "set", "mo0p", "up");
        ns.IpCmd("link", "set", "mo0", "up");
        await Next<LinkEvent>(monitor, e => e.Link.Name == "mo0" && e.Link.IsUp && !e.Deleted, "RTM_NEWLINK mo0 up");

        ns.IpCmd("addr", "add", "192.0.2.1/24", "dev", "mo0");
        AddressEvent addr = await Next<AddressEvent>(monitor, e => e.Address.Local.Equals(IPAddress.Parse("192.0.2.1")), "RTM_NEWADDR 192.0.2.1");
        Assert.False(addr.Deleted);
        Assert.Equal(24, addr.Address.PrefixLength);
        Assert.Equal(mo0, addr.Address.InterfaceIndex);

        ns.IpCmd("route", "add", "203.0.113.0/24", "via", "192.0.2.254", "dev", "mo0", "table", "100", "proto", "77");
        RouteChangeEvent route = await Next<RouteChangeEvent>(monitor, e => e.Route.Table == 100, "RTM_NEWROUTE in table 100");
        Assert.False(route.Deleted);
        Assert.Equal(IPAddress.Parse("203.0.113.0"), route.Route.Destination);
        Assert.Equal(24, route.Route.DestinationPrefixLength);
        Assert.Equal(IPAddress.Parse("192.0.2.254"), route.Route.Gateway);
        Assert.Equal((byte)77, route.Route.Protocol);

        ns.IpCmd("rule", "add", "from", "192.0.2.10", "table", "100", "priority", "1000", "protocol", "77");
        RuleEvent rule = await Next<RuleEvent>(monitor, e => e.Rule.Priority == 1000, "RTM_NEWRULE priority 1000");
        Assert.False(rule.Deleted);
        Assert.Equal(IPAddress.Parse("192.0.2.10"), rule.Rule.Source);
        Assert.Equal(100u, rule.Rule.Table);
        Assert.Equal((byte)77, rule.Rule.Protocol);

        ns.IpCmd("neigh", "add", "192.0.2.20", "lladdr", "02:00:5e:00:53:20", "dev", "mo0", "nud", "permanent");
        NeighbourEvent neigh = await Next<NeighbourEvent>(monitor, e => e.Neighbour.Destination.Equals(IPAddress.Parse("192.0.2.20")), "RTM_NEWNEIGH 192.0.2.20");
        Assert.False(neigh.Deleted);
        Assert.Equal(NUD_PERMANENT, neigh.Neighbour.State);
        Assert.Equal(System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-5E-00-53-20"), neigh.Neighbour.LinkLayerAddress);

        // And now the deletes, each flagged.
        ns.IpCmd("neigh", "del", "192.0.2.20", "dev", "mo0");
        await Next<NeighbourEvent>(monitor, e => e.Deleted && e.Neighbour.Destination.Equals(IPAddress.Parse("192.0.2.20")), "RTM_DELNEIGH 192.0.2.20");

        ns.IpCmd("rule", "del", "priority", "1000");
        RuleEvent ruleGone = await Next<RuleEvent>(monitor, e => e.Deleted, "RTM_DELRULE");
        Assert.Equal(1000u, ruleGone.Rule.Priority);

        ns.IpCmd("route", "del", "203.0.113.0/24", "table", "100");
        RouteChangeEvent routeGone = await Next<RouteChangeEvent>(monitor, e => e.Deleted && e.Route.Table == 100, "RTM_DELROUTE in table 100");
        Assert.Equal(IPAddress.Parse("203.0.113.0"), routeGone.Route.Destination);

        ns.IpCmd("addr", "del", "192.0.2.1/24", "dev", "mo0");
        await Next<AddressEvent>(monitor, e => e.Deleted && e.Address.Local.Equals(IPAddress.Parse("192.0.2.1")), "RTM_DELADDR 192.0.2.1");

        ns.IpCmd("link", "del", "mo0");
        LinkEvent linkGone = await Next<LinkEvent>(monitor, e => IsLink(e, "mo0", true), "RTM_DELLINK mo0");
        Assert.Equal(mo0, linkGone.Link.Index);
        Assert.Equal(0, monitor.Malformed);
    }

    [Fact]
    public async Task Only_the_chosen_groups_are_reported()
    {
        using var ns = new TestNamespace();
        using var monitor = RouteMonitor.Start(RouteMonitorGroups.Rules, ns.Namespace);

        // Link, address and route changes first; then the rule that ends the wait.
        ns.IpCmd("link", "add", "gr0", "type", "veth", "peer", "name", "gr0p");
        ns.IpCmd("link", "set", "gr0", "up");
        ns.IpCmd("addr", "add", "192.0.2.1/24", "dev", "gr0");
        ns.IpCmd("route", "add", "blackhole", "203.0.113.0/24", "table", "100");
        ns.IpCmd("rule", "add", "from", "192.0.2.10", "table", "100", "priority", "1000");

        var skipped = new List<RouteEvent>();
        await Next<RuleEvent>(monitor, e => e.Rule.Priority == 1000, "RTM_NEWRULE priority 1000", skipped);

        Assert.Empty(skipped);
    }

    [Fact]
    public async Task Events_of_another_namespace_do_not_arrive()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        using var monitor = RouteMonitor.Start(RouteMonitorGroups.All, ns.Namespace);

        other.IpCmd("link", "add", "elsewhere", "type", "veth", "peer", "name", "elsewherep");
        other.IpCmd("route", "add", "blackhole", "203.0.113.0/24", "table", "100");
        ns.IpCmd("link", "add", "here", "type", "veth", "peer", "name", "herep");

        var skipped = new List<RouteEvent>();
        await Next<LinkEvent>(monitor, e => IsLink(e, "here", false), "RTM_NEWLINK here", skipped);

        Assert.DoesNotContain(skipped, e => e is LinkEvent l && l.Link.Name.StartsWith("elsewhere", StringComparison.Ordinal));
        Assert.DoesNotContain(skipped, e => e is RouteChangeEvent r && r.Route.Table == 100);
    }

    [Fact]
    public async Task Dispose_completes_the_channel()
    {
        using var ns = new TestNamespace();
        var monitor = RouteMonitor.Start(RouteMonitorGroups.All, ns.Namespace);
        ns.IpCmd("link", "add", "dc0", "type", "veth", "peer", "name", "dc0p");
        await Next<LinkEvent>(monitor, e => IsLink(e, "dc0", false), "RTM_NEWLINK dc0");

        monitor.Dispose();

        await monitor.Events.Completion.WaitAsync(Bound, TestContext.Current.CancellationToken);
        Assert.True(monitor.Events.Completion.IsCompletedSuccessfully);
        // Whatever was still queued can be read; then the stream ends instead of waiting forever.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Bound);
        await foreach (RouteEvent _ in monitor.Events.ReadAllAsync(cts.Token))
        {
        }

        Assert.False(cts.IsCancellationRequested);
        monitor.Dispose(); // twice is harmless
    }

    /// <summary>
    /// The ENOBUFS path under <see cref="RouteMonitor"/>: a listener with a tiny receive buffer that
    /// does not read while thousands of routes are added overflows; ReceiveEvents reports that once
    /// as null (the caller must resynchronise) and then keeps delivering events.
    /// </summary>
    [Fact]
    public void Overflowing_an_event_socket_reports_null_once_and_then_continues()
    {
        using var ns = new TestNamespace();
        using NetlinkSocket socket = NetlinkSocket.Open(NetlinkConstants.NETLINK_ROUTE, ns.Namespace, new NetlinkSocketOptions
        {
            Groups = [RTNLGRP_IPV4_ROUTE],
            ReceiveBufferBytes = 4096,
            ReceiveTimeout = TimeSpan.FromMilliseconds(200),
        });
        string batch = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(batch, Enumerable.Range(0, 3000).Select(i =>
                string.Create(CultureInfo.InvariantCulture, $"route add blackhole 10.30.{i / 256}.{i % 256}/32 table 100")));
            ns.IpCmd("-batch", batch);
        }
        finally
        {
            File.Delete(batch);
        }

        Assert.Equal(3000, ns.IpJson("route", "show", "table", "100").GetArrayLength());

        // The overflow is reported first, then what the buffer did hold, then nothing (timeout).
        Assert.Null(socket.ReceiveEvents());
        int received = 0;
        int nulls = 0;
        for (List<NetlinkMessage>? got = socket.ReceiveEvents(); got is null || got.Count > 0; got = socket.ReceiveEvents())
        {
            nulls += got is null ? 1 : 0;
            received += got?.Count ?? 0;
        }

        Assert.Equal(0, nulls);
        Assert.InRange(received, 1, 2999); // some fitted, most were dropped

        // Still subscribed and in step: the next change arrives.
        ns.IpCmd("route", "add", "blackhole", "198.51.100.0/24", "table", "100");
        var deadline = DateTime.UtcNow + Bound;
        RouteEntry? seen = null;
        while (seen is null && DateTime.UtcNow < deadline)
        {
            List<NetlinkMessage>? got = socket.ReceiveEvents();
            Assert.NotNull(got);
            seen = got.Where(m => m.Type == RTM_NEWROUTE).Select(RouteEntry.Decode)
                .FirstOrDefault(r => r.Destination.Equals(IPAddress.Parse("198.51.100.0")) && r.DestinationPrefixLength == 24);
        }

        Assert.NotNull(seen);
        Assert.Equal(100u, seen.Table);
        Assert.Equal(RTN_BLACKHOLE, seen.Type);
    }
}
