using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Text;
using System.Text.Json;
using MobilityAgents.Core;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// The reconciler against a real kernel, in namespaces: c, a host on the home LAN 192.0.2.0/24;
/// a, the home agent (the reconciler's target: LAN interface "la", outer address 198.51.100.1);
/// b1 and b2, the laptop on the visited networks 198.51.100.0/24 and 203.0.113.0/24, each with the
/// mirror tunnel and the home address 192.0.2.10, set up by the test through the library. State is
/// read back with <c>ip -j</c>, traffic checked with ping. They need the ipip module, which the
/// development host lacks: they run in the kernel VM
/// (<c>tests/kernel-vm/run-dotnet-tests.sh ... -trait "Kernel=ipip"</c>).
/// </summary>
[Trait("Kernel", "ipip")]
public class KernelHomeAgentTests
{
    private static readonly IPAddress Outer = IPAddress.Parse("198.51.100.1");
    private static readonly IPAddress Home = IPAddress.Parse("192.0.2.10");
    private static readonly IPAddress Home2 = IPAddress.Parse("192.0.2.11");
    private static readonly PhysicalAddress LaptopMac = PhysicalAddress.Parse("02-00-5E-00-53-99");

    [Fact]
    public void A_binding_is_programmed_with_markers_reaches_the_laptop_moves_in_place_and_is_removed_exactly()
    {
        using var c = new TestNamespace();
        using var a = new TestNamespace();
        using var b1 = new TestNamespace();
        using var b2 = new TestNamespace();
        (string, TestNamespace)[] all = [("c lan host", c), ("a home agent", a), ("b1 laptop at 198.51.100.2", b1), ("b2 laptop at 203.0.113.2", b2)];
        Wire(a, "la", "192.0.2.1/24", c, "lc", "192.0.2.100/24");
        Wire(a, "ua1", "198.51.100.1/24", b1, "e1", "198.51.100.2/24");
        (_, int e2) = Wire(a, "ua2", "203.0.113.1/24", b2, "e2", "203.0.113.2/24");
        b2.Handle.Routes.Add(new RouteEntry { Gateway = IPAddress.Parse("203.0.113.1"), OutputInterface = e2 });
        Laptop(b1, "198.51.100.2");
        Laptop(b2, "203.0.113.2");
        // The laptop was at home a moment ago: the LAN host still has its MAC for the home address.
        int lc = c.Handle.Links.IndexOf("lc");
        c.Handle.Neighbours.Replace(new NeighbourEntry { InterfaceIndex = lc, Destination = Home, LinkLayerAddress = LaptopMac, State = NUD_STALE });
        Assert.Equal("02:00:5e:00:53:99", NeighbourMac(c, Home));

        List<string> namesBefore = LinkNames(a);
        using var kernel = NetlinkHomeAgentKernel.Open(a.Namespace);
        var reconciler = new HomeAgentReconciler(kernel);
        HomeAgentTunnel laptop = new("0a1b2c3d4e5f60718293a4b5c6d7e8f9", Home, IPAddress.Parse("198.51.100.2"));
        HomeAgentTunnel other = new("ffeeddccbbaa99887766554433221100", Home2, IPAddress.Parse("198.51.100.3")); // nobody there
        var desired = new HomeAgentState(Outer, "la", [laptop, other]);

        HomeAgentReached r = reconciler.Apply(desired);

        Assert.True(r.Reached(desired), string.Join("\n", r.Errors) + Describe(all));
        TunnelLink link = r.Links[laptop.BindingId];
        AssertTunnel(a, link, laptop, "198.51.100.2");
        AssertTunnel(a, r.Links[other.BindingId], other, "198.51.100.3");
        Assert.Equal("1", Cat(a, "/proc/sys/net/ipv4/ip_forward"));
        Assert.True(r.IpForwarding);

        // The gratuitous ARP re-pointed the LAN host's entry at the home agent's MAC, before any traffic.
        string aMac = LinkJson(a, "la").Str("address")!;
        Eventually(() => NeighbourMac(c, Home) == aMac, $"c's neighbour entry for {Home} becomes {aMac}", all);

        long b1Rx = RxPackets(b1, "tun");
        AssertPings("c -> home address through the tunnel to b1", c, Home, all);
        Assert.True(RxPackets(b1, "tun") > b1Rx, "the echo reached b1 through the tunnel");

        // The laptop moves to 203.0.113.2: the same link is re-pointed in place.
        HomeAgentTunnel moved = laptop with { CareOfAddress = IPAddress.Parse("203.0.113.2") };
        HomeAgentReached m = reconciler.Apply(desired.WithTunnel(moved));

        Assert.True(m.Reached(desired.WithTunnel(moved)), string.Join("\n", m.Errors));
        Assert.Equal(link, m.Links[laptop.BindingId]);
        AssertTunnel(a, link, moved, "203.0.113.2");
        b1Rx = RxPackets(b1, "tun");
        long b2Rx = RxPackets(b2, "tun");
        AssertPings("c -> home address through the re-pointed tunnel to b2", c, Home, all);
        Assert.True(RxPackets(b2, "tun") > b2Rx, "the echo reached b2 through the tunnel");
        Assert.Equal(b1Rx, RxPackets(b1, "tun"));

        // Spoofing is refused. (1) Through the registered tunnel, an inner source that is not the
        // laptop's home address: strict rp_filter on the tunnel drops it at the home agent.
        int bTun = b2.Handle.Links.IndexOf("tun");
        IPAddress spoofed = IPAddress.Parse("192.0.2.99");
        b2.Handle.Addresses.Add(new AddressEntry { InterfaceIndex = bTun, Local = spoofed, PrefixLength = 32 });
        b2.Handle.Rules.Add(new RuleEntry { Source = spoofed, SourcePrefixLength = 32, Table = 100, Priority = 1001 });
        long echoes = IcmpInEchos(c);
        long rpDrops = ReversePathDrops(a);
        Assert.False(PingOnceFrom(b2, spoofed, IPAddress.Parse("192.0.2.100")), "a spoofed inner source got an answer");
        Assert.Equal(echoes, IcmpInEchos(c));
        Assert.True(ReversePathDrops(a) > rpDrops, "the home agent's rp_filter dropped the spoofed inner source");
        // (2) The right inner source from an outer address that is not the registered care-of
        // address (b1, where the laptop was before): no tunnel accepts it.
        Assert.False(PingOnceFrom(b1, Home, IPAddress.Parse("192.0.2.100")), "ipip from an unregistered care-of address got through");
        Assert.Equal(echoes, IcmpInEchos(c));
        // Control: the same ping from the registered care-of address and the home address gets through.
        Assert.True(PingOnceFrom(b2, Home, IPAddress.Parse("192.0.2.100")) || PingOnceFrom(b2, Home, IPAddress.Parse("192.0.2.100")), "the legitimate ping failed");
        Assert.True(IcmpInEchos(c) > echoes);

        // The binding ends: exactly its objects go; the other binding's stay as they were.
        TunnelLink otherLink = m.Links[other.BindingId];
        HomeAgentReached gone = reconciler.Apply(new HomeAgentState(Outer, "la", [other]));

        Assert.Empty(gone.Errors);
        Assert.DoesNotContain(link.Name, LinkNames(a));
        Assert.Empty(a.IpJson("route", "show", "192.0.2.10/32").EnumerateArray());
        Assert.DoesNotContain(a.IpJson("neigh", "show", "proxy").EnumerateArray(), n => n.Str("dst") == "192.0.2.10");
        AssertTunnel(a, otherLink, other, "198.51.100.3");
        Assert.Equal(namesBefore.Append(otherLink.Name).Order(StringComparer.Ordinal), LinkNames(a).Order(StringComparer.Ordinal));

        // Teardown: nothing marked is left.
        Assert.Empty(reconciler.Apply(null).Errors);
        AssertNothingMarked(a);
    }

    [Fact]
    public void Sweep_after_a_crash_removes_the_marked_objects_and_leaves_the_administrators()
    {
        using var a = new TestNamespace();
        a.Handle.Links.AddVeth("la", "lap");
        a.Handle.Links.SetUp(a.Handle.Links.IndexOf("lap"));
        UpWithAddress(a, "la", "192.0.2.1/24");
        // The administrator's: a link with our name prefix but no alias, with a route through it; an
        // ipip link with our alias but not our name prefix; a proxy entry without our protocol.
        a.Handle.Links.AddVeth("ma-adm", "ma-admp");
        int adm = UpWithAddress(a, "ma-adm", "10.9.0.1/24");
        a.Handle.Links.SetUp(a.Handle.Links.IndexOf("ma-admp"));
        a.Handle.Routes.Add(new RouteEntry { Destination = IPAddress.Parse("10.8.0.0"), DestinationPrefixLength = 16, Gateway = IPAddress.Parse("10.9.0.2"), OutputInterface = adm, Protocol = RTPROT_STATIC });
        a.Handle.Links.AddIpip("adm0", new IpipParameters { Local = Outer, Remote = IPAddress.Parse("198.51.100.250") }, alias: Ownership.LinkAliasPrefix + "not-ours");
        a.Handle.Neighbours.Add(new NeighbourEntry { InterfaceIndex = a.Handle.Links.IndexOf("la"), Destination = IPAddress.Parse("192.0.2.200"), Proxy = true });
        string adminBefore = AdminView(a);

        var desired = new HomeAgentState(Outer, "la", [new("crash-1", Home, IPAddress.Parse("198.51.100.2")), new("crash-2", Home2, IPAddress.Parse("203.0.113.2"))]);
        using (var first = NetlinkHomeAgentKernel.Open(a.Namespace))
        {
            Assert.Empty(new HomeAgentReconciler(first).Apply(desired).Errors);
        }

        // The daemon died without cleaning up; the next one sweeps before it knows any binding.
        Assert.Equal(2, a.IpJson("link", "show").EnumerateArray().Count(l => l.Str("ifalias")?.StartsWith("mobilityagents:crash-", StringComparison.Ordinal) == true));
        using var second = NetlinkHomeAgentKernel.Open(a.Namespace);
        HomeAgentSweep s = new HomeAgentReconciler(second).Sweep();

        Assert.Empty(s.Errors);
        Assert.Equal(4, s.Removed.Length); // two proxy entries and two links (their routes with them)
        AssertNothingMarked(a);
        Assert.Equal(adminBefore, AdminView(a));
    }

    // ---- helpers ----

    private static void AssertTunnel(TestNamespace a, TunnelLink link, HomeAgentTunnel t, string remote)
    {
        JsonElement l = LinkJson(a, link.Name);
        Assert.Equal(link.Index, l.GetProperty("ifindex").GetInt32());
        Assert.Equal(1480, l.GetProperty("mtu").GetInt32());
        Assert.Equal(Ownership.LinkAliasPrefix + t.BindingId, l.Str("ifalias"));
        Assert.Contains("UP", l.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        JsonElement info = l.GetProperty("linkinfo");
        Assert.Equal("ipip", info.Str("info_kind"));
        JsonElement data = info.GetProperty("info_data");
        Assert.Equal(("198.51.100.1", remote, 64, true), (data.Str("local"), data.Str("remote"), data.GetProperty("ttl").GetInt32(), data.GetProperty("pmtudisc").GetBoolean()));
        Assert.Equal("1", Cat(a, $"/proc/sys/net/ipv4/conf/{link.Name}/rp_filter"));

        JsonElement route = Assert.Single(a.IpJson("route", "show", $"{t.HomeAddress}/32").EnumerateArray().ToList());
        Assert.Equal((link.Name, "77", "link"), (route.Str("dev"), route.Str("protocol"), route.Str("scope")));
        JsonElement proxy = Assert.Single(a.IpJson("neigh", "show", "proxy").EnumerateArray(), n => n.Str("dst") == t.HomeAddress.ToString());
        Assert.Equal(("la", "77"), (proxy.Str("dev"), proxy.Str("protocol")));
    }

    private static void AssertNothingMarked(TestNamespace a)
    {
        Assert.DoesNotContain(a.IpJson("link", "show").EnumerateArray(), l => l.Str("ifalias")?.StartsWith(Ownership.LinkAliasPrefix, StringComparison.Ordinal) == true && l.Str("ifname")!.StartsWith("ma", StringComparison.Ordinal));
        Assert.DoesNotContain(a.IpJson("route", "show", "table", "all").EnumerateArray(), r => r.Str("protocol") == "77");
        Assert.DoesNotContain(a.IpJson("neigh", "show", "proxy").EnumerateArray(), n => n.Str("protocol") == "77");
    }

    /// <summary>The administrator's objects as ip shows them (links without statistics-like fields that change on their own).</summary>
    private static string AdminView(TestNamespace a)
    {
        var s = new StringBuilder();
        foreach (JsonElement l in a.IpJson("-d", "link", "show").EnumerateArray().Where(l => !(l.Str("ifname")!.StartsWith("ma", StringComparison.Ordinal) && l.Str("ifalias")?.StartsWith(Ownership.LinkAliasPrefix, StringComparison.Ordinal) == true)))
        {
            s.Append(CultureInfo.InvariantCulture, $"link {l.Str("ifindex")} {l.Str("ifname")} {l.Str("ifalias")} {l.Str("mtu")}\n");
        }

        // "linkdown" follows the veth peer's carrier, which settles asynchronously: it is link
        // state, not something the administrator configured, so it is left out of the comparison.
        s.Append(a.IpCmd("-4", "route", "show", "table", "all").Replace(" linkdown", "", StringComparison.Ordinal)).Append(a.IpCmd("neigh", "show", "proxy"));
        return s.ToString();
    }

    /// <summary>The laptop: mirror tunnel to the home agent's outer address, home address on it, and only traffic from the home address into it.</summary>
    private static void Laptop(TestNamespace b, string careOf)
    {
        b.Handle.Links.AddIpip("tun", new IpipParameters { Local = IPAddress.Parse(careOf), Remote = Outer, Ttl = 64 }, mtu: 1480);
        int t = b.Handle.Links.IndexOf("tun");
        b.Handle.Addresses.Add(new AddressEntry { InterfaceIndex = t, Local = Home, PrefixLength = 32 });
        b.Handle.Links.SetUp(t);
        b.Handle.Rules.Add(new RuleEntry { Source = Home, SourcePrefixLength = 32, Table = 100, Priority = 1000 });
        b.Handle.Routes.Add(new RouteEntry { OutputInterface = t, Table = 100 });
        Sysctl.SetRpFilter(b.Namespace, "all", 0);
        Sysctl.SetRpFilter(b.Namespace, "tun", 0);
    }

    private static (int Left, int Right) Wire(TestNamespace left, string leftName, string leftCidr, TestNamespace right, string rightName, string rightCidr)
    {
        left.Handle.Links.AddVeth(leftName, rightName, right.Namespace);
        return (UpWithAddress(left, leftName, leftCidr), UpWithAddress(right, rightName, rightCidr));
    }

    private static int UpWithAddress(TestNamespace ns, string name, string cidr)
    {
        int index = ns.Handle.Links.IndexOf(name);
        string[] parts = cidr.Split('/');
        ns.Handle.Addresses.Add(new AddressEntry { InterfaceIndex = index, Local = IPAddress.Parse(parts[0]), PrefixLength = byte.Parse(parts[1], CultureInfo.InvariantCulture) });
        ns.Handle.Links.SetUp(index);
        return index;
    }

    private static JsonElement LinkJson(TestNamespace ns, string name) =>
        Assert.Single(ns.IpJson("-d", "link", "show", "dev", name).EnumerateArray().ToList());

    private static List<string> LinkNames(TestNamespace ns) =>
        [.. ns.IpJson("link", "show").EnumerateArray().Select(l => l.Str("ifname")!)];

    private static string? NeighbourMac(TestNamespace ns, IPAddress address) =>
        ns.IpJson("-4", "neigh", "show", address.ToString()).EnumerateArray().Select(n => n.Str("lladdr")).FirstOrDefault();

    private static long RxPackets(TestNamespace ns, string name) =>
        Assert.Single(ns.IpJson("-s", "link", "show", "dev", name).EnumerateArray().ToList()).GetProperty("stats64").GetProperty("rx").GetProperty("packets").GetInt64();

    private static string Cat(TestNamespace ns, string path) => Ip.Run("netns", "exec", ns.Name, "cat", path).Trim();

    private static void Eventually(Func<bool> condition, string what, (string, TestNamespace)[] context)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(10))
            {
                Assert.Fail($"not within 10 s: {what}\n{Describe(context)}");
            }

            Thread.Sleep(50);
        }
    }

    /// <summary>One echo with a given source address; true when answered.</summary>
    private static bool PingOnceFrom(TestNamespace from, IPAddress source, IPAddress destination) =>
        Ip.Exec(["netns", "exec", from.Name, .. PingCommand.Value, "-c", "1", "-W", "3", "-I", source.ToString(), destination.ToString()]).Rc == 0;

    /// <summary>Icmp InEchos of /proc/net/snmp: echo requests that reached this namespace's stack.</summary>
    private static long IcmpInEchos(TestNamespace ns) => SnmpCounter(ns, "/proc/net/snmp", "Icmp:", "InEchos");

    /// <summary>TcpExt IPReversePathFilter of /proc/net/netstat: packets dropped by rp_filter.</summary>
    private static long ReversePathDrops(TestNamespace ns) => SnmpCounter(ns, "/proc/net/netstat", "TcpExt:", "IPReversePathFilter");

    private static long SnmpCounter(TestNamespace ns, string file, string prefix, string name)
    {
        string[] lines = [.. Cat(ns, file).Split('\n').Where(l => l.StartsWith(prefix, StringComparison.Ordinal))];
        string[] names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(values[Array.IndexOf(names, name)], CultureInfo.InvariantCulture);
    }

    /// <summary>One ICMP echo from inside a namespace, with one retry (the first echo of a fresh path can be lost while ARP resolves under emulation).</summary>
    private static void AssertPings(string what, TestNamespace from, IPAddress destination, (string, TestNamespace)[] context)
    {
        var log = new StringBuilder();
        for (int attempt = 1; attempt <= 2; attempt++)
        {
            (int rc, string stdout, string stderr) = Ip.Exec(["netns", "exec", from.Name, .. PingCommand.Value, "-c", "1", "-W", "5", destination.ToString()]);
            log.Append(CultureInfo.InvariantCulture, $"[ping attempt {attempt}, rc {rc}] {stdout.Trim()} {stderr.Trim()}\n");
            if (rc == 0)
            {
                return;
            }
        }

        Assert.Fail($"{what}: no answer\n{log}{Describe(context)}");
    }

    private static string Describe((string Role, TestNamespace Ns)[] namespaces)
    {
        var s = new StringBuilder();
        foreach ((string role, TestNamespace ns) in namespaces)
        {
            s.Append(CultureInfo.InvariantCulture, $"\n--- {role} ({ns.Name})\n");
            foreach (string[] cmd in new[] { new[] { "-d", "-s", "link", "show" }, ["addr", "show"], ["route", "show", "table", "all"], ["rule", "show"], ["neigh", "show"], ["neigh", "show", "proxy"] })
            {
                (int _, string stdout, string stderr) = Ip.Exec(["-n", ns.Name, .. cmd]);
                s.Append(CultureInfo.InvariantCulture, $"$ ip {string.Join(' ', cmd)}\n{stdout}{stderr}");
            }
        }

        return s.ToString();
    }

    /// <summary>iputils <c>ping</c> if the PATH has it, else <c>busybox ping</c>.</summary>
    private static readonly Lazy<string[]> PingCommand = new(() =>
    {
        string[] path = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':');
        bool Has(string exe) => path.Any(d => d.Length > 0 && File.Exists(Path.Combine(d, exe)));
        return Has("ping") ? ["ping"] : Has("busybox") ? ["busybox", "ping"] : throw new InvalidOperationException("neither ping nor busybox is on the PATH");
    });
}

internal static class JsonExtensions
{
    /// <summary>A property as text (strings as such, numbers as written), or null when absent.</summary>
    public static string? Str(this JsonElement e, string property) =>
        e.TryGetProperty(property, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v.ToString() : null;
}
