using System.Net;
using System.Text.Json;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.Tests.IpipLab;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>
/// The ipip datapath, through the library, against a real kernel: classic links created, re-pointed
/// in place and deleted; one external (collect_md) device with <c>encap ip</c> routes; the recipe
/// (proxy ARP, forwarding, policy routing) end to end; traffic checked with ping across namespaces,
/// state with <c>ip -j</c>. They need the ipip module, which the development host's kernel lacks:
/// they run in the kernel VM (tests/kernel-vm), and are excluded from the host run with
/// <c>-trait- "Kernel=ipip"</c>. On a kernel without ipip they fail at the first AddIpip with
/// EOPNOTSUPP "Unknown device type".
/// Addresses: 198.51.100.0/24 outer (visited network), 10.0.0.x inner point-to-point,
/// 192.0.2.0/24 home LAN, 203.0.113.0/24 addresses served by the external device.
/// </summary>
[Trait("Kernel", "ipip")]
public class IpipTests
{
    private static readonly IPAddress Home = Ip4("192.0.2.10");

    [Fact]
    public void Classic_link_is_created_as_asked_refused_twice_and_deleted()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("u0", "u0p");
        int u0 = UpWithAddress(ns, "u0", "198.51.100.1/24");
        var p = new IpipParameters
        {
            Local = Ip4("198.51.100.1"),
            Remote = Ip4("198.51.100.2"),
            Ttl = 64,
            Tos = 0,
            PathMtuDiscovery = true,
            UnderlyingLinkIndex = u0,
        };

        h.Links.AddIpip("tunl1", p, mtu: 1480);

        JsonElement link = LinkJson(ns, "tunl1");
        Assert.Equal(1480, link.GetProperty("mtu").GetInt32());
        Assert.Equal("ipip", link.GetProperty("link_type").GetString());
        JsonElement data = IpipInfoData(ns, "tunl1");
        Assert.Equal("198.51.100.1", data.GetProperty("local").GetString());
        Assert.Equal("198.51.100.2", data.GetProperty("remote").GetString());
        Assert.Equal(64, data.GetProperty("ttl").GetInt32());
        Assert.True(data.GetProperty("pmtudisc").GetBoolean());
        Assert.Equal("u0", data.GetProperty("link").GetString());
        Assert.False(data.TryGetProperty("external", out _));

        Link ours = Assert.IsType<Link>(h.Links.Get("tunl1"));
        Assert.Equal("ipip", ours.Kind);
        Assert.Equal(1480, ours.Mtu);
        Assert.Equal(768, ours.DeviceType); // ARPHRD_TUNNEL
        Assert.Equal(link.GetProperty("ifindex").GetInt32(), ours.Index);
        Assert.Equal(p, ours.Ipip); // every parameter decodes back as it was set

        NetlinkException dup = Assert.Throws<NetlinkException>(() => h.Links.AddIpip("tunl1", p, mtu: 1480));
        Assert.True(dup.IsExists, dup.Message);
        Assert.StartsWith("ip link add tunl1 mtu 1480 type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 pmtudisc dev " + u0, dup.Message, StringComparison.Ordinal);

        Assert.True(h.Links.Delete("tunl1"));
        Assert.DoesNotContain("tunl1", LinkNames(ns));
        Assert.Null(h.Links.Get("tunl1"));
        Assert.False(h.Links.Delete("tunl1"));
    }

    [Fact]
    public void Classic_link_without_pmtudisc_inherits_ttl_and_a_fixed_ttl_is_refused_clearly()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        var p = new IpipParameters { Local = Ip4("198.51.100.1"), Remote = Ip4("198.51.100.3"), Ttl = 0, PathMtuDiscovery = false };

        h.Links.AddIpip("tunl2", p);

        JsonElement data = IpipInfoData(ns, "tunl2");
        Assert.False(data.GetProperty("pmtudisc").GetBoolean());
        Assert.Equal(0, data.GetProperty("ttl").GetInt32()); // inherit
        Assert.Equal(p, h.Links.Get("tunl2")?.Ipip);

        // DF off with a fixed outer TTL: the kernel would accept it and set DF anyway (a fixed TTL
        // forces it in ipip_netlink_parms), so the library refuses it up front, as ip(8) does.
        ArgumentException e = Assert.Throws<ArgumentException>(() => h.Links.AddIpip("tunl3", p with { Remote = Ip4("198.51.100.4"), Ttl = 64 }));
        Assert.StartsWith("ip link add tunl3 type ipip local 198.51.100.1 remote 198.51.100.4 ttl 64 nopmtudisc: ttl != 0 and nopmtudisc are incompatible", e.Message, StringComparison.Ordinal);
        ArgumentException change = Assert.Throws<ArgumentException>(() => h.Links.ChangeIpip(h.Links.IndexOf("tunl2"), p with { Ttl = 64 }));
        Assert.Contains("ttl != 0 and nopmtudisc are incompatible", change.Message, StringComparison.Ordinal);
        Assert.Equal(p, h.Links.Get("tunl2")?.Ipip);
        Assert.DoesNotContain("tunl3", LinkNames(ns));
    }

    [Fact]
    public void Classic_link_is_repointed_in_place_and_traffic_follows()
    {
        // a keeps the link; b1 and b2 are the far end before and after the move. a's outer address
        // stays 198.51.100.1 (on ua1); b2 reaches it through its default route.
        using var a = new TestNamespace();
        using var b1 = new TestNamespace();
        using var b2 = new TestNamespace();
        (string, TestNamespace)[] all = [("a", a), ("b1", b1), ("b2", b2)];
        Wire(a, "ua1", "198.51.100.1/30", b1, "e1", "198.51.100.2/30");
        (_, int e2) = Wire(a, "ua2", "198.51.100.5/30", b2, "e2", "198.51.100.6/30");
        b2.Handle.Routes.Add(new RouteEntry { Gateway = Ip4("198.51.100.5"), OutputInterface = e2, Protocol = Proto });
        Tunnel(b1, "tunl1", local: "198.51.100.2", remote: "198.51.100.1", inner: "10.0.0.2", innerPeer: "10.0.0.1");
        Tunnel(b2, "tunl1", local: "198.51.100.6", remote: "198.51.100.1", inner: "10.0.0.2", innerPeer: "10.0.0.1");
        int t = Tunnel(a, "tunl1", local: "198.51.100.1", remote: "198.51.100.2", inner: "10.0.0.1", innerPeer: "10.0.0.2");
        var homeRoute = new RouteEntry { Destination = Home, DestinationPrefixLength = 32, OutputInterface = t, Protocol = Proto };
        a.Handle.Routes.Add(homeRoute);
        IPAddress inner = Ip4("10.0.0.1"), far = Ip4("10.0.0.2");

        AssertPings("a -> b1 through tunl1", a, far, inner, all);
        Assert.True(RxPackets(b1, "tunl1") >= 1);
        Assert.Equal(0, RxPackets(b2, "tunl1"));

        // The laptop moved: re-point the remote only.
        a.Handle.Links.SetIpipRemote("tunl1", Ip4("198.51.100.6"));

        AssertSameLinkStillProgrammed(a, t, remote: "198.51.100.6", homeRoute);
        long b1Before = RxPackets(b1, "tunl1");
        AssertPings("a -> b2 through the re-pointed tunl1", a, far, inner, all);
        Assert.True(RxPackets(b2, "tunl1") >= 1, "b2 should have decapsulated the echo");
        Assert.Equal(b1Before, RxPackets(b1, "tunl1"));

        // And back, with the full parameter set (ChangeIpip replaces them all).
        IpipParameters back = new() { Local = Ip4("198.51.100.1"), Remote = Ip4("198.51.100.2"), PathMtuDiscovery = true };
        a.Handle.Links.ChangeIpip(t, back);

        AssertSameLinkStillProgrammed(a, t, remote: "198.51.100.2", homeRoute);
        Assert.Equal(back, a.Handle.Links.Get(t)?.Ipip);
        long b2Before = RxPackets(b2, "tunl1");
        b1Before = RxPackets(b1, "tunl1");
        AssertPings("a -> b1 again after ChangeIpip", a, far, inner, all);
        Assert.True(RxPackets(b1, "tunl1") > b1Before);
        Assert.Equal(b2Before, RxPackets(b2, "tunl1"));

        // Not an ipip link, or no link at all: clear errors naming the ip command.
        NetlinkException veth = Assert.Throws<NetlinkException>(() => a.Handle.Links.SetIpipRemote("ua1", Ip4("198.51.100.9")));
        Assert.Contains("ip link set dev ua1 type ipip remote 198.51.100.9", veth.Message, StringComparison.Ordinal);
        Assert.Contains("ua1 is a veth link, not ipip", veth.Message, StringComparison.Ordinal);
        NetlinkException vethByIndex = Assert.Throws<NetlinkException>(() => a.Handle.Links.ChangeIpip(a.Handle.Links.IndexOf("ua1"), back));
        Assert.Equal(Errno.EOPNOTSUPP, vethByIndex.Errno); // rtnl_newlink: IFLA_INFO_DATA for another kind than the device's
        Assert.Contains("type ipip", vethByIndex.Message, StringComparison.Ordinal);
        NetlinkException missing = Assert.Throws<NetlinkException>(() => a.Handle.Links.SetIpipRemote("nosuch", Ip4("198.51.100.9")));
        Assert.Equal(Errno.ENODEV, missing.Errno);
        Assert.Equal("ipip", LinkJson(a, "tunl1").GetProperty("linkinfo").GetProperty("info_kind").GetString());
    }

    private static void AssertSameLinkStillProgrammed(TestNamespace a, int index, string remote, RouteEntry homeRoute)
    {
        JsonElement link = LinkJson(a, "tunl1");
        Assert.Equal(index, link.GetProperty("ifindex").GetInt32());
        Assert.Equal(remote, link.GetProperty("linkinfo").GetProperty("info_data").GetProperty("remote").GetString());
        Assert.Equal("198.51.100.1", link.GetProperty("linkinfo").GetProperty("info_data").GetProperty("local").GetString());
        Link ours = Assert.IsType<Link>(a.Handle.Links.Get("tunl1"));
        Assert.Equal(index, ours.Index);
        Assert.True(ours.IsUp);
        Assert.Equal(Ip4(remote), ours.Ipip?.Remote);

        JsonElement addr = Assert.Single(Assert.Single(a.IpJson("addr", "show", "dev", "tunl1").EnumerateArray().ToList())
            .GetProperty("addr_info").EnumerateArray().Where(x => x.GetProperty("family").GetString() == "inet").ToList());
        Assert.Equal("10.0.0.1", addr.GetProperty("local").GetString());
        Assert.Equal("10.0.0.2", addr.GetProperty("address").GetString());
        AddressEntry ourAddr = Assert.Single(a.Handle.Addresses.List(index));
        Assert.Equal((Ip4("10.0.0.1"), Ip4("10.0.0.2"), (byte)32), (ourAddr.Local, ourAddr.Peer, ourAddr.PrefixLength));

        JsonElement route = Assert.Single(a.IpJson("route", "show", "192.0.2.10/32").EnumerateArray().ToList());
        Assert.Equal("tunl1", route.GetProperty("dev").GetString());
        Assert.Contains(a.Handle.Routes.List(), r => r.Destination.Equals(homeRoute.Destination) && r.OutputInterface == index && r.Protocol == Proto);
    }

    [Fact]
    public void External_device_serves_two_endpoints_through_encap_ip_routes()
    {
        // hub h: one external ipip0; spokes s1 and s2: classic tunnels back to h.
        using var h = new TestNamespace();
        using var s1 = new TestNamespace();
        using var s2 = new TestNamespace();
        (string, TestNamespace)[] all = [("h", h), ("s1", s1), ("s2", s2)];
        Wire(h, "h1", "198.51.100.1/30", s1, "e1", "198.51.100.2/30");
        Wire(h, "h2", "198.51.100.5/30", s2, "e2", "198.51.100.6/30");
        const uint Table = 100;

        h.Handle.Links.AddIpip("ipip0", new IpipParameters { External = true });
        int x = UpWithAddress(h, "ipip0", "203.0.113.1/32");
        var toS1 = new RouteEntry { Destination = Ip4("203.0.113.7"), DestinationPrefixLength = 32, EncapDestination = Ip4("198.51.100.2"), OutputInterface = x, Table = Table, Protocol = Proto };
        var toS2 = toS1 with { Destination = Ip4("203.0.113.8"), EncapDestination = Ip4("198.51.100.6") };
        h.Handle.Routes.Add(toS1);
        h.Handle.Routes.Add(toS2);
        h.Handle.Rules.Add(new RuleEntry { Destination = Ip4("203.0.113.0"), DestinationPrefixLength = 24, Table = Table, Priority = 1000, Protocol = Proto });

        foreach ((TestNamespace s, string local, string remote, string served) in new[] { (s1, "198.51.100.2", "198.51.100.1", "203.0.113.7"), (s2, "198.51.100.6", "198.51.100.5", "203.0.113.8") })
        {
            s.Handle.Links.AddIpip("tunl1", new IpipParameters { Local = Ip4(local), Remote = Ip4(remote) });
            int st = UpWithAddress(s, "tunl1", served + "/32");
            s.Handle.Routes.Add(new RouteEntry { Destination = Ip4("203.0.113.1"), DestinationPrefixLength = 32, OutputInterface = st, Protocol = Proto });
        }

        // The device, as ip sees it and as we decode it.
        JsonElement data = IpipInfoData(h, "ipip0");
        Assert.True(data.GetProperty("external").GetBoolean());
        Assert.Equal(new IpipParameters { External = true }, h.Handle.Links.Get("ipip0")?.Ipip);

        // The routes, as ip sees them: "dst" twice (the route, then the encap destination).
        List<JsonElement> shown = [.. h.IpJson("route", "show", "table", "100").EnumerateArray()];
        Assert.Equal(2, shown.Count);
        foreach ((JsonElement r, string dst, string encapDst) in shown.Zip(["203.0.113.7", "203.0.113.8"], ["198.51.100.2", "198.51.100.6"]))
        {
            Assert.Equal([dst, encapDst], All(r, "dst"));
            Assert.Equal("ip", r.GetProperty("encap").GetString());
            Assert.Equal("ipip0", r.GetProperty("dev").GetString());
            Assert.Equal("77", r.GetProperty("protocol").GetString());
        }

        // ... and as we decode them.
        List<RouteEntry> ours = [.. h.Handle.Routes.List(Table).OrderBy(r => r.Destination.ToString())];
        Assert.Equal(2, ours.Count);
        Assert.Equal((Ip4("203.0.113.7"), (byte)32, Ip4("198.51.100.2"), (int?)x, Proto, Table), (ours[0].Destination, ours[0].DestinationPrefixLength, ours[0].EncapDestination, ours[0].OutputInterface, ours[0].Protocol, ours[0].Table));
        Assert.Equal((Ip4("203.0.113.8"), Ip4("198.51.100.6")), (ours[1].Destination, ours[1].EncapDestination));
        Assert.All(ours, r => Assert.Null(r.EncapSource));

        // One device, two endpoints.
        AssertPings("h -> s1 through ipip0 (encap dst 198.51.100.2)", h, Ip4("203.0.113.7"), null, all);
        AssertPings("h -> s2 through ipip0 (encap dst 198.51.100.6)", h, Ip4("203.0.113.8"), null, all);
        Assert.True(RxPackets(h, "ipip0") >= 2, "both replies should arrive on the one external device");
        Assert.True(RxPackets(s1, "tunl1") >= 1);
        Assert.True(RxPackets(s2, "tunl1") >= 1);

        // Only one external ipip device per namespace.
        NetlinkException second = Assert.Throws<NetlinkException>(() => h.Handle.Links.AddIpip("ipip1", new IpipParameters { External = true }));
        Assert.True(second.IsExists, second.Message);
        Assert.StartsWith("ip link add ipip1 type ipip external", second.Message, StringComparison.Ordinal);

        // Deleting an encap route: once, then it is gone.
        Assert.True(h.Handle.Routes.Delete(toS2));
        Assert.False(h.Handle.Routes.Delete(toS2));
        Assert.Equal(["203.0.113.7"], h.IpJson("route", "show", "table", "100").EnumerateArray().Select(r => All(r, "dst")[0]).ToList());
    }

    [Fact]
    public void Recipe_home_lan_host_reaches_the_laptops_home_address_through_the_tunnel()
    {
        // c: a host on the home LAN; a: the home agent (gateway); b: the laptop on a visited network.
        using var c = new TestNamespace();
        using var a = new TestNamespace();
        using var b = new TestNamespace();
        (string, TestNamespace)[] all = [("c", c), ("a", a), ("b", b)];
        (int la, _) = Wire(a, "la", "192.0.2.1/24", c, "lc", "192.0.2.100/24");
        Wire(a, "ua", "198.51.100.1/24", b, "ub", "198.51.100.2/24");

        // Home agent: tunnel to the laptop, home address routed into it, proxy ARP for it, forwarding.
        int at = Tunnel(a, "tunl1", local: "198.51.100.1", remote: "198.51.100.2", inner: "10.0.0.1", innerPeer: "10.0.0.2");
        a.Handle.Routes.Add(new RouteEntry { Destination = Home, DestinationPrefixLength = 32, OutputInterface = at, Protocol = Proto });
        a.Handle.Neighbours.Add(new NeighbourEntry { InterfaceIndex = la, Destination = Home, Proxy = true });
        Sysctl.SetIpForward(a.Namespace, true);

        // Laptop: mirror tunnel, home address on it, and only traffic from the home address into it.
        int bt = Tunnel(b, "tunl1", local: "198.51.100.2", remote: "198.51.100.1", inner: "10.0.0.2", innerPeer: "10.0.0.1");
        b.Handle.Addresses.Add(new AddressEntry { InterfaceIndex = bt, Local = Home, PrefixLength = 32 });
        b.Handle.Rules.Add(new RuleEntry { Source = Home, SourcePrefixLength = 32, Table = 200, Priority = 1000, Protocol = Proto });
        b.Handle.Routes.Add(new RouteEntry { Gateway = Ip4("10.0.0.1"), OutputInterface = bt, Table = 200, Protocol = Proto });

        // The oracle's view of what was programmed.
        Assert.Contains(a.IpJson("neigh", "show", "proxy").EnumerateArray(), n => n.GetProperty("dst").GetString() == "192.0.2.10" && n.GetProperty("dev").GetString() == "la");
        Assert.Equal("tunl1", Assert.Single(a.IpJson("route", "show", "192.0.2.10/32").EnumerateArray().ToList()).GetProperty("dev").GetString());
        Assert.Equal("1", Ip.Run("netns", "exec", a.Name, "cat", "/proc/sys/net/ipv4/ip_forward").Trim());
        Assert.Contains(b.IpJson("rule", "show").EnumerateArray(), r => r.TryGetProperty("src", out JsonElement s) && s.GetString() == "192.0.2.10" && r.GetProperty("table").GetString() == "200" && r.GetProperty("priority").GetInt32() == 1000);
        JsonElement dflt = Assert.Single(b.IpJson("route", "show", "table", "200").EnumerateArray().ToList());
        Assert.Equal(("default", "10.0.0.1", "tunl1"), (dflt.GetProperty("dst").GetString(), dflt.GetProperty("gateway").GetString(), dflt.GetProperty("dev").GetString()));

        long bRx = RxPackets(b, "tunl1"), aRx = RxPackets(a, "tunl1");
        AssertPings("c -> home address 192.0.2.10 (proxy ARP on a, forwarded into the tunnel, answered by b through table 200)", c, Home, null, all);
        Assert.True(RxPackets(b, "tunl1") > bRx, "the echo reached b through the tunnel");
        Assert.True(RxPackets(a, "tunl1") > aRx, "the reply came back to a through the tunnel");
        string aMac = LinkJson(a, "la").GetProperty("address").GetString()!;
        Assert.Contains(c.IpJson("neigh", "show", "192.0.2.10").EnumerateArray(), n => n.GetProperty("lladdr").GetString() == aMac);
    }
}
