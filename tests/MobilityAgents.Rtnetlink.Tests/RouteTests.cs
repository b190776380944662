using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text.Json;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>
/// IPv4 routes (<c>ip route</c>) in non-main tables, read back with <c>ip -j -N route show</c>
/// (-N: protocol, scope and table as numbers, so 77 is not confused with a name from rt_protos).
/// </summary>
public class RouteTests
{
    private const byte Proto = 77; // unused in /etc/iproute2/rt_protos, so ip prints it as a number anyway
    private static readonly IPAddress Local = IPAddress.Parse("192.0.2.1");
    private static readonly IPAddress Gw = IPAddress.Parse("192.0.2.254");
    private static readonly IPAddress Gw2 = IPAddress.Parse("192.0.2.253");
    private static readonly IPAddress Dst = IPAddress.Parse("203.0.113.0");

    /// <summary>A veth "r0" (up, its peer up) with 192.0.2.1/24: 192.0.2.0/24 is connected.</summary>
    private static int Setup(TestNamespace ns)
    {
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("r0", "r0p");
        h.Links.SetUp(h.Links.IndexOf("r0p"));
        int r0 = h.Links.IndexOf("r0");
        h.Links.SetUp(r0);
        h.Addresses.Add(new AddressEntry { InterfaceIndex = r0, Local = Local, PrefixLength = 24 });
        return r0;
    }

    private static List<JsonElement> IpRoutes(TestNamespace ns, uint table) =>
        [.. ns.IpJson("-N", "route", "show", "table", table.ToString(CultureInfo.InvariantCulture)).EnumerateArray()];

    /// <summary>One route as ip describes it, in a canonical form both sides can be compared in.</summary>
    private static string Canon(JsonElement r)
    {
        string mtu = r.TryGetProperty("metrics", out JsonElement m)
            ? m.EnumerateArray().Select(x => x.Str("mtu")).FirstOrDefault(x => x is not null) ?? "-"
            : "-";
        return $"{r.Str("dst")} via {r.Str("gateway") ?? "-"} dev {r.Str("dev")} src {r.Str("prefsrc") ?? "-"} " +
            $"proto {r.Str("protocol") ?? "3"} scope {r.Str("scope") ?? "0"} metric {r.Str("metric") ?? "0"} mtu {mtu}";
    }

    private static string Canon(RouteEntry r, RouteNetlink h)
    {
        string dst = r.DestinationPrefixLength == 0 ? "default" : r.DestinationPrefixLength == 32 ? $"{r.Destination}" : $"{r.Destination}/{r.DestinationPrefixLength}";
        string dev = r.OutputInterface is { } i ? h.Links.Get(i)?.Name ?? "?" : "-";
        return $"{dst} via {r.Gateway?.ToString() ?? "-"} dev {dev} src {r.PreferredSource?.ToString() ?? "-"} " +
            $"proto {r.Protocol} scope {r.Scope ?? 0} metric {r.Metric ?? 0} mtu {r.Mtu?.ToString(CultureInfo.InvariantCulture) ?? "-"}";
    }

    /// <summary>ip's view of a table and ours are the same set of routes.</summary>
    private static void AssertListAgrees(TestNamespace ns, uint table)
    {
        Assert.Equal(
            IpRoutes(ns, table).Select(Canon).Order(StringComparer.Ordinal),
            ns.Handle.Routes.List(table).Select(r => Canon(r, ns.Handle)).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(100u)]
    [InlineData(1000u)] // >= 256: only RTA_TABLE can carry it
    public void Route_with_every_attribute_add_duplicate_add_delete_duplicate_delete(uint table)
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int r0 = Setup(ns);
        var route = new RouteEntry
        {
            Destination = Dst,
            DestinationPrefixLength = 24,
            Gateway = Gw,
            OutputInterface = r0,
            PreferredSource = Local,
            Table = table,
            Protocol = Proto,
            Metric = 50,
            Mtu = 1400,
        };

        h.Routes.Add(route);

        JsonElement ip = Assert.Single(IpRoutes(ns, table));
        Assert.Equal("203.0.113.0/24", ip.Str("dst"));
        Assert.Equal("192.0.2.254", ip.Str("gateway"));
        Assert.Equal("r0", ip.Str("dev"));
        Assert.Equal("192.0.2.1", ip.Str("prefsrc"));
        Assert.Equal("77", ip.Str("protocol"));
        Assert.Equal(50, ip.GetProperty("metric").GetInt32());
        Assert.Equal(1400, Assert.Single(ip.GetProperty("metrics").EnumerateArray()).GetProperty("mtu").GetInt32());
        Assert.Null(ip.Str("scope")); // universe, as for any route with a gateway
        // It is in exactly that table: not in main, and not truncated into table (T & 0xff).
        List<JsonElement> all = [.. ns.IpJson("-N", "route", "show", "table", "all").EnumerateArray().Where(r => r.Str("dst") == "203.0.113.0/24")];
        Assert.Equal(table.ToString(CultureInfo.InvariantCulture), Assert.Single(all).Str("table"));

        RouteEntry ours = Assert.Single(h.Routes.List(table));
        Assert.Equal(table, ours.Table);
        Assert.Equal(Dst, ours.Destination);
        Assert.Equal(24, ours.DestinationPrefixLength);
        Assert.Equal(Gw, ours.Gateway);
        Assert.Equal(r0, ours.OutputInterface);
        Assert.Equal(Local, ours.PreferredSource);
        Assert.Equal(Proto, ours.Protocol);
        Assert.Equal(50u, ours.Metric);
        Assert.Equal(1400u, ours.Mtu);
        Assert.Equal(RT_SCOPE_UNIVERSE, ours.Scope);
        AssertListAgrees(ns, table);

        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Routes.Add(route));
        Assert.True(e.IsExists);
        Assert.Equal("EEXIST", e.ErrnoName);
        Assert.Equal($"ip route add 203.0.113.0/24 via 192.0.2.254 dev (ifindex {r0}) src 192.0.2.1 table {table} proto 77 metric 50 mtu 1400", e.Operation);
        Assert.Contains(e.Operation, e.Message, StringComparison.Ordinal);
        Assert.Contains("EEXIST", e.Message, StringComparison.Ordinal);
        Assert.Single(IpRoutes(ns, table));

        Assert.True(h.Routes.Delete(route));
        Assert.Empty(IpRoutes(ns, table));
        Assert.Empty(h.Routes.List(table));

        Assert.False(h.Routes.Delete(route));
    }

    [Fact]
    public void Scope_is_link_for_a_device_route_unless_given()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int r0 = Setup(ns);
        var link = new RouteEntry { Destination = IPAddress.Parse("198.51.100.0"), DestinationPrefixLength = 24, OutputInterface = r0, Table = 100, Protocol = Proto };
        var host = new RouteEntry { Destination = IPAddress.Parse("198.51.100.7"), DestinationPrefixLength = 32, OutputInterface = r0, Table = 100, Protocol = Proto, Scope = RT_SCOPE_HOST };

        h.Routes.Add(link);
        h.Routes.Add(host);

        List<JsonElement> ip = IpRoutes(ns, 100);
        Assert.Equal("253", Assert.Single(ip, r => r.Str("dst") == "198.51.100.0/24").Str("scope"));
        Assert.Equal("254", Assert.Single(ip, r => r.Str("dst") == "198.51.100.7").Str("scope"));
        Assert.Equal(RT_SCOPE_LINK, Assert.Single(h.Routes.List(100), r => r.DestinationPrefixLength == 24).Scope);
        Assert.Equal(RT_SCOPE_HOST, Assert.Single(h.Routes.List(100), r => r.DestinationPrefixLength == 32).Scope);
        AssertListAgrees(ns, 100);

        // A delete without a scope matches any scope, as ip route del does.
        Assert.True(h.Routes.Delete(host with { Scope = null }));
        Assert.True(h.Routes.Delete(link));
        Assert.Empty(IpRoutes(ns, 100));
    }

    [Fact]
    public void Replace_changes_the_gateway_in_place()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int r0 = Setup(ns);
        var route = new RouteEntry { Destination = Dst, DestinationPrefixLength = 24, Gateway = Gw, OutputInterface = r0, Table = 100, Protocol = Proto };
        h.Routes.Add(route);

        h.Routes.Replace(route with { Gateway = Gw2 });

        JsonElement ip = Assert.Single(IpRoutes(ns, 100));
        Assert.Equal("192.0.2.253", ip.Str("gateway"));
        Assert.Equal(Gw2, Assert.Single(h.Routes.List(100)).Gateway);

        // Replace also creates when there is nothing to replace.
        h.Routes.Replace(route with { Destination = IPAddress.Parse("198.51.100.0") });
        Assert.Equal(2, IpRoutes(ns, 100).Count);
        AssertListAgrees(ns, 100);
    }

    [Fact]
    public void Default_route_in_main_and_in_a_policy_table()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        Setup(ns);
        var main = new RouteEntry { Gateway = Gw };
        var t100 = new RouteEntry { Gateway = Gw2, Table = 100, Protocol = Proto };

        h.Routes.Add(main);
        h.Routes.Add(t100);

        Assert.Equal("192.0.2.254", Assert.Single(ns.IpJson("route", "show", "default").EnumerateArray()).Str("gateway"));
        JsonElement ip100 = Assert.Single(IpRoutes(ns, 100));
        Assert.Equal("default", ip100.Str("dst"));
        Assert.Equal("192.0.2.253", ip100.Str("gateway"));
        RouteEntry ours = Assert.Single(h.Routes.List(), r => r.DestinationPrefixLength == 0);
        Assert.Equal(IPAddress.Any, ours.Destination);
        Assert.Equal(Gw, ours.Gateway);
        Assert.Equal("default via 192.0.2.254 table 254 proto 3", main.ToIpArguments());
        AssertListAgrees(ns, RT_TABLE_MAIN);
        AssertListAgrees(ns, 100);

        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Routes.Add(main));
        Assert.True(e.IsExists);
        Assert.Equal("ip route add default via 192.0.2.254 table 254 proto 3", e.Operation);

        Assert.True(h.Routes.Delete(main));
        Assert.Empty(ns.IpJson("route", "show", "default").EnumerateArray());
        Assert.Single(IpRoutes(ns, 100)); // the other table's default is untouched
        Assert.False(h.Routes.Delete(main));
        Assert.True(h.Routes.Delete(t100));
        Assert.Empty(IpRoutes(ns, 100));
    }

    [Fact]
    public void Unreachable_gateway_is_refused_with_the_kernel_explanation()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        Setup(ns);
        var route = new RouteEntry { Destination = IPAddress.Parse("198.51.100.0"), DestinationPrefixLength = 24, Gateway = IPAddress.Parse("203.0.113.9"), Table = 100, Protocol = Proto };

        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Routes.Add(route));

        Assert.Equal(Errno.ENETUNREACH, e.Errno);
        Assert.Equal("ENETUNREACH", e.ErrnoName);
        Assert.Equal("Nexthop has invalid gateway", e.ExtAckMessage);
        Assert.Equal("ip route add 198.51.100.0/24 via 203.0.113.9 table 100 proto 77", e.Operation);
        Assert.Contains("Nexthop has invalid gateway", e.Message, StringComparison.Ordinal);
        Assert.Contains(e.Operation, e.Message, StringComparison.Ordinal);
        Assert.False(e.IsExists);
        Assert.False(e.IsNotFound);
        Assert.DoesNotContain(ns.IpJson("-N", "route", "show", "table", "all").EnumerateArray(), r => r.Str("dst") == "198.51.100.0/24");
    }

    [Fact]
    public void List_of_a_table_that_was_never_used_is_empty()
    {
        using var ns = new TestNamespace();

        // The kernel answers a dump filtered on a table it never created with ENOENT ("FIB table
        // does not exist"); a table without routes is simply empty to a caller sweeping it at start.
        Assert.Empty(ns.Handle.Routes.List(100));
        Assert.Empty(ns.Handle.Routes.List(5000));
    }

    private static List<RouteEntry> Many(int count, int r0, IPAddress gw) =>
        [.. Enumerable.Range(0, count).Select(i => new RouteEntry
        {
            Destination = new IPAddress([10, 20, (byte)(i / 256), (byte)(i % 256)]),
            DestinationPrefixLength = 32,
            Gateway = gw,
            OutputInterface = r0,
            Table = 100,
            Protocol = Proto,
        })];

    [Fact]
    public void Batches_of_500_routes_add_replace_and_delete()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int r0 = Setup(ns);
        List<RouteEntry> routes = Many(500, r0, Gw);

        Assert.All(h.Routes.AddMany(routes), Assert.Null);

        List<JsonElement> ip = IpRoutes(ns, 100);
        Assert.Equal(500, ip.Count);
        Assert.All(ip, r => Assert.Equal("192.0.2.254", r.Str("gateway")));
        Assert.All(ip, r => Assert.Equal("77", r.Str("protocol")));
        Assert.Equal(
            routes.Select(r => r.Destination.ToString()).Order(StringComparer.Ordinal),
            ip.Select(r => r.Str("dst")!).Order(StringComparer.Ordinal));
        Assert.Equal(500, h.Routes.List(100).Count);
        AssertListAgrees(ns, 100);

        List<RouteEntry> replaced = [.. routes.Select(r => r with { Gateway = Gw2 })];
        Assert.All(h.Routes.ReplaceMany(replaced), Assert.Null);

        ip = IpRoutes(ns, 100);
        Assert.Equal(500, ip.Count);
        Assert.All(ip, r => Assert.Equal("192.0.2.253", r.Str("gateway")));

        Assert.All(h.Routes.DeleteMany(replaced), Assert.Null);

        Assert.Empty(IpRoutes(ns, 100));
        Assert.Empty(h.Routes.List(100));
        // Deleting what is already gone counts as done.
        Assert.All(h.Routes.DeleteMany(replaced), Assert.Null);
        // The socket is still in step after the batches: a single request works.
        h.Routes.Add(routes[0]);
        Assert.Single(IpRoutes(ns, 100));
    }

    [Fact]
    public void A_failing_route_in_a_batch_is_reported_at_its_index_and_the_others_are_added()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int r0 = Setup(ns);
        List<RouteEntry> routes = Many(500, r0, Gw);
        // Item 250 already exists (added by an independent actor); item 377 has an unreachable gateway.
        ns.IpCmd("route", "add", "10.20.0.250/32", "via", "192.0.2.254", "dev", "r0", "table", "100", "proto", "77");
        routes[377] = routes[377] with { Gateway = IPAddress.Parse("203.0.113.9"), OutputInterface = null };

        NetlinkException?[] results = h.Routes.AddMany(routes);

        Assert.Equal(500, results.Length);
        NetlinkException dup = Assert.IsType<NetlinkException>(results[250]);
        Assert.True(dup.IsExists);
        Assert.Equal($"ip route add 10.20.0.250/32 via 192.0.2.254 dev (ifindex {r0}) table 100 proto 77", dup.Operation);
        NetlinkException bad = Assert.IsType<NetlinkException>(results[377]);
        Assert.Equal(Errno.ENETUNREACH, bad.Errno);
        Assert.Equal("Nexthop has invalid gateway", bad.ExtAckMessage);
        Assert.StartsWith("ip route add 10.20.1.121/32 via 203.0.113.9", bad.Operation, StringComparison.Ordinal);
        Assert.Equal(498, results.Count(r => r is null));

        // 498 added by the batch plus the one that was there: 499; the bad one is absent.
        List<JsonElement> ip = IpRoutes(ns, 100);
        Assert.Equal(499, ip.Count);
        Assert.DoesNotContain(ip, r => r.Str("dst") == "10.20.1.121");
        Assert.Contains(ip, r => r.Str("dst") == "10.20.1.120");
        Assert.Contains(ip, r => r.Str("dst") == "10.20.1.122");

        // DeleteMany: the bad one was never there, which counts as deleted.
        Assert.All(h.Routes.DeleteMany(routes), Assert.Null);
        Assert.Empty(IpRoutes(ns, 100));
    }

    [Fact]
    public unsafe void A_batch_across_the_sequence_number_wrap_reports_each_result_at_its_index()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int r0 = Setup(ns);
        List<RouteEntry> routes = Many(40, r0, Gw);
        ns.IpCmd("route", "add", "10.20.0.20/32", "via", "192.0.2.254", "dev", "r0", "table", "100", "proto", "77");
        // White box, because nothing else reaches it in a test: sequence numbers start from the
        // tick count, so a long-running process does get to the 32-bit wrap. Put it 10 requests
        // before, so the batch straddles it (and the stamping skips 0).
        const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;
        FieldInfo sequence = typeof(NetlinkSocket).GetField("_sequence", Private) ?? throw new InvalidOperationException("NetlinkSocket._sequence not found");
        FieldInfo fd = typeof(NetlinkSocket).GetField("_fd", Private) ?? throw new InvalidOperationException("NetlinkSocket._fd not found");
        sequence.SetValue(h.Socket, uint.MaxValue - 10);
        // A bound instead of a hang should an ack be lost to misnumbering: 5 s receive timeout.
        long* tv = stackalloc long[2] { 5, 0 };
        Assert.Equal(0, Tmds.Linux.LibC.setsockopt((int)fd.GetValue(h.Socket)!, Tmds.Linux.LibC.SOL_SOCKET, Tmds.Linux.LibC.SO_RCVTIMEO, tv, 2 * sizeof(long)));

        NetlinkException?[] results = h.Routes.AddMany(routes);

        Assert.True(Assert.IsType<NetlinkException>(results[20]).IsExists);
        Assert.StartsWith("ip route add 10.20.0.20/32 ", results[20]!.Operation, StringComparison.Ordinal);
        Assert.Equal(39, results.Count(r => r is null));
        Assert.Equal(40, IpRoutes(ns, 100).Count);
        // Single requests after the wrap are matched to their answers too.
        h.Routes.Add(routes[0] with { Destination = IPAddress.Parse("198.51.100.1") });
        Assert.Equal(41, IpRoutes(ns, 100).Count);
    }
}
