using System.Diagnostics;
using System.Text.Json;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>Links (<c>ip link</c>) in a fresh namespace, each step read back with <c>ip -j link show</c>.</summary>
public class LinkTests
{
    private const byte IF_OPER_DOWN = 2;
    private const byte IF_OPER_UP = 6;

    [Fact]
    public void Veth_add_duplicate_add_delete_duplicate_delete()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;

        h.Links.AddVeth("v0", "v0p");

        JsonElement v0 = Oracle.Link(ns, "v0");
        JsonElement v0p = Oracle.Link(ns, "v0p");
        Assert.Equal("veth", v0.GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Equal("veth", v0p.GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Equal("v0p", v0.Str("link"));
        Assert.Equal("v0", v0p.Str("link"));

        // Our own dump agrees with ip: same names, indexes, kinds and peer pointers.
        List<Link> ours = h.Links.List();
        Assert.Equal(Oracle.LinkNames(ns), ours.Select(l => l.Name).Order(StringComparer.Ordinal));
        Link o0 = Assert.Single(ours, l => l.Name == "v0");
        Link o0p = Assert.Single(ours, l => l.Name == "v0p");
        Assert.Equal(v0.GetProperty("ifindex").GetInt32(), o0.Index);
        Assert.Equal(v0p.GetProperty("ifindex").GetInt32(), o0p.Index);
        Assert.Equal("veth", o0.Kind);
        Assert.Equal(o0p.Index, o0.ParentIndex);
        Assert.Equal(o0.Index, o0p.ParentIndex);
        Assert.Equal(v0.Str("address"), o0.HardwareAddress is { } mac ? Oracle.FormatMac(mac.GetAddressBytes()) : null);

        // Duplicate: EEXIST, named, with the ip command that failed; the new peer name was not created.
        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Links.AddVeth("v0", "v1p"));
        Assert.True(e.IsExists);
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Equal("EEXIST", e.ErrnoName);
        Assert.Equal("ip link add v0 type veth peer name v1p", e.Operation);
        Assert.Contains("EEXIST", e.Message, StringComparison.Ordinal);
        Assert.Contains("ip link add v0 type veth peer name v1p", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("v1p", Oracle.LinkNames(ns));

        Assert.True(h.Links.Delete("v0"));
        // Deleting one end of a veth pair deletes both.
        Assert.Equal(["lo"], Oracle.LinkNames(ns));
        Assert.Equal(["lo"], h.Links.List().Select(l => l.Name));

        Assert.False(h.Links.Delete("v0"));
        Assert.False(h.Links.Delete("v0p"));
    }

    [Fact]
    public void Veth_peer_created_directly_in_another_namespace()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();

        ns.Handle.Links.AddVeth("x0", "x0p", other.Namespace);

        Assert.Equal(["lo", "x0"], Oracle.LinkNames(ns));
        Assert.Equal(["lo", "x0p"], Oracle.LinkNames(other));
        Assert.Equal("veth", Oracle.Link(other, "x0p").GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Null(ns.Handle.Links.Get("x0p"));
        Link peer = Assert.IsType<Link>(other.Handle.Links.Get("x0p"));
        Assert.Equal(Oracle.Link(other, "x0p").GetProperty("ifindex").GetInt32(), peer.Index);

        // The pair still behaves as one: deleting the near end removes the far one.
        Assert.True(ns.Handle.Links.Delete("x0"));
        Assert.Equal(["lo"], Oracle.LinkNames(other));
    }

    [Fact]
    public void Duplicate_peer_name_in_the_other_namespace_is_refused_and_creates_nothing()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        other.IpCmd("link", "add", "taken", "type", "veth", "peer", "name", "taken2");

        NetlinkException e = Assert.Throws<NetlinkException>(() => ns.Handle.Links.AddVeth("y0", "taken", other.Namespace));

        Assert.True(e.IsExists);
        Assert.Equal($"ip link add y0 type veth peer name taken netns {other.Name}", e.Operation);
        Assert.Equal(["lo"], Oracle.LinkNames(ns));
        Assert.Equal(["lo", "taken", "taken2"], Oracle.LinkNames(other));
    }

    [Fact]
    public void Set_up_and_down_changes_flags_and_operstate()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("u0", "u0p");
        int u0 = h.Links.IndexOf("u0");
        int u0p = h.Links.IndexOf("u0p");
        Assert.DoesNotContain("UP", Oracle.Flags(ns, "u0"));
        Assert.Equal("DOWN", Oracle.Link(ns, "u0").Str("operstate"));

        h.Links.SetUp(u0p);
        h.Links.SetUp(u0);

        Assert.Contains("UP", Oracle.Flags(ns, "u0"));
        // Carrier comes from the peer through linkwatch: give it a bounded moment.
        Oracle.Eventually(() => Oracle.Link(ns, "u0").Str("operstate") == "UP", "u0 operstate UP");
        Assert.Contains("LOWER_UP", Oracle.Flags(ns, "u0"));
        Link up = Assert.IsType<Link>(h.Links.Get(u0));
        Assert.True(up.IsUp);
        Assert.Equal(IF_OPER_UP, up.OperState);
        Assert.NotEqual(0u, up.Flags & IFF_LOWER_UP);

        h.Links.SetDown(u0);

        Assert.DoesNotContain("UP", Oracle.Flags(ns, "u0"));
        Oracle.Eventually(() => Oracle.Link(ns, "u0").Str("operstate") == "DOWN", "u0 operstate DOWN");
        Link down = Assert.IsType<Link>(h.Links.Get("u0"));
        Assert.False(down.IsUp);
        Assert.Equal(IF_OPER_DOWN, down.OperState);
        // Only u0 went down; its peer stays administratively up.
        Assert.Contains("UP", Oracle.Flags(ns, "u0p"));
    }

    [Fact]
    public void Mtu_change_is_visible_to_ip_and_to_Get()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("m0", "m0p");
        int m0 = h.Links.IndexOf("m0");
        Assert.Equal(1500, Oracle.Link(ns, "m0").GetProperty("mtu").GetInt32());

        h.Links.SetMtu(m0, 1380);

        Assert.Equal(1380, Oracle.Link(ns, "m0").GetProperty("mtu").GetInt32());
        Assert.Equal(1380, h.Links.Get(m0)?.Mtu);
        Assert.Equal(1500, Oracle.Link(ns, "m0p").GetProperty("mtu").GetInt32());
    }

    [Fact]
    public void Alias_is_set_and_read_back()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("a0", "a0p", alias: "mobility-agents: created");
        int a0 = h.Links.IndexOf("a0");
        Assert.Equal("mobility-agents: created", Oracle.Link(ns, "a0").Str("ifalias"));
        Assert.Equal("mobility-agents: created", h.Links.Get("a0")?.Alias);
        Assert.Null(Oracle.Link(ns, "a0p").Str("ifalias"));

        h.Links.SetAlias(a0, "owner=ma test 42");

        Assert.Equal("owner=ma test 42", Oracle.Link(ns, "a0").Str("ifalias"));
        Assert.Equal("owner=ma test 42", h.Links.Get(a0)?.Alias);
        Assert.Contains(h.Links.List(), l => l.Name == "a0" && l.Alias == "owner=ma test 42");
    }

    [Fact]
    public void SetNamespace_moves_the_link_out_of_one_namespace_into_another()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("n0", "n0p");
        int n0p = h.Links.IndexOf("n0p");

        h.Links.SetNamespace(n0p, other.Namespace);

        Assert.Equal(["lo", "n0"], Oracle.LinkNames(ns));
        Assert.Equal(["lo", "n0p"], Oracle.LinkNames(other));
        Assert.Null(h.Links.Get("n0p"));
        Assert.Equal("veth", other.Handle.Links.Get("n0p")?.Kind);
        Assert.DoesNotContain(h.Links.List(), l => l.Name == "n0p");
        Assert.Contains(other.Handle.Links.List(), l => l.Name == "n0p");
    }

    [Fact]
    public void Get_by_name_and_by_index_agree_with_ip_and_missing_ones_are_null()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("g0", "g0p");
        int ipIndex = Oracle.Link(ns, "g0").GetProperty("ifindex").GetInt32();

        Link byName = Assert.IsType<Link>(h.Links.Get("g0"));
        Link byIndex = Assert.IsType<Link>(h.Links.Get(ipIndex));
        Assert.Equal(ipIndex, byName.Index);
        Assert.Equal("g0", byIndex.Name);
        Assert.Equal(byName.HardwareAddress, byIndex.HardwareAddress);
        Assert.Equal(ipIndex, h.Links.IndexOf("g0"));

        Assert.Null(h.Links.Get("nosuchlink"));
        Assert.Null(h.Links.Get(987_654));
        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Links.IndexOf("nosuchlink"));
        Assert.Equal(Errno.ENODEV, e.Errno);
        Assert.Contains("nosuchlink", e.Message, StringComparison.Ordinal);
        Assert.Contains(ns.Name, e.Message, StringComparison.Ordinal);

        // The loopback device is there too, as ip shows it.
        Assert.Equal(Oracle.Link(ns, "lo").GetProperty("ifindex").GetInt32(), h.Links.Get("lo")?.Index);
    }

    [Fact]
    public void Delete_by_index_removes_the_pair_and_a_second_delete_returns_false()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("d0", "d0p");
        int d0p = Oracle.Link(ns, "d0p").GetProperty("ifindex").GetInt32();

        Assert.True(h.Links.Delete(d0p));

        Assert.Equal(["lo"], Oracle.LinkNames(ns));
        Assert.False(h.Links.Delete(d0p));
        Assert.False(h.Links.Delete("d0"));
    }

    [Fact]
    public void List_of_more_links_than_one_dump_datagram_holds_agrees_with_ip()
    {
        using var ns = new TestNamespace();
        string batch = Path.GetTempFileName();
        try
        {
            // 120 links with details take several 32 KiB dump datagrams.
            File.WriteAllLines(batch, Enumerable.Range(0, 60).Select(i => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"link add many{i} type veth peer name many{i}p")));
            ns.IpCmd("-batch", batch);
        }
        finally
        {
            File.Delete(batch);
        }

        List<Link> ours = ns.Handle.Links.List();

        Assert.Equal(121, ours.Count);
        Assert.Equal(Oracle.LinkNames(ns), ours.Select(l => l.Name).Order(StringComparer.Ordinal));
        Dictionary<string, int> ipIndex = ns.IpJson("link", "show").EnumerateArray()
            .ToDictionary(l => l.GetProperty("ifname").GetString()!, l => l.GetProperty("ifindex").GetInt32());
        Assert.All(ours, l => Assert.Equal(ipIndex[l.Name], l.Index));
        Assert.All(ours.Where(l => l.Name != "lo"), l => Assert.Equal("veth", l.Kind));
    }

    [Theory]
    [InlineData("")]
    [InlineData("sixteen-chars-xx")]
    [InlineData("has space")]
    [InlineData("a/b")]
    [InlineData("a:b")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("tab\tname")]
    [InlineData("é")]
    public void Invalid_names_are_rejected_before_any_kernel_call(string bad)
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;

        Assert.Throws<ArgumentException>(() => h.Links.AddVeth(bad, "okpeer"));
        Assert.Throws<ArgumentException>(() => h.Links.AddVeth("okname", bad));
        Assert.Throws<ArgumentException>(() => h.Links.Get(bad));
        Assert.Throws<ArgumentException>(() => h.Links.Delete(bad));

        // Nothing half-made: neither the valid end nor the invalid one exists.
        Assert.Equal(["lo"], Oracle.LinkNames(ns));
    }

    [Fact]
    public void Longest_valid_name_is_accepted()
    {
        using var ns = new TestNamespace();
        ns.Handle.Links.AddVeth("fifteen-chars-x", "p");

        Assert.Equal(["fifteen-chars-x", "lo", "p"], Oracle.LinkNames(ns));
        Assert.True(ns.Handle.Links.Delete("fifteen-chars-x"));
    }
}

/// <summary>Shared helpers of the kernel tests: <c>ip -j</c> readings and a bounded wait.</summary>
internal static class Oracle
{
    /// <summary>The <c>ip -j -d link show dev NAME</c> object; fails the test if ip does not know the link.</summary>
    public static JsonElement Link(TestNamespace ns, string name) =>
        Assert.Single(ns.IpJson("-d", "link", "show", "dev", name).EnumerateArray());

    /// <summary>The names of every link in the namespace, sorted, as ip lists them.</summary>
    public static List<string> LinkNames(TestNamespace ns) =>
        [.. ns.IpJson("link", "show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!).Order(StringComparer.Ordinal)];

    public static List<string> Flags(TestNamespace ns, string name) =>
        [.. Link(ns, name).GetProperty("flags").EnumerateArray().Select(f => f.GetString()!)];

    /// <summary>A property as text (strings as such, numbers as written), or null when absent.</summary>
    public static string? Str(this JsonElement e, string property) =>
        e.TryGetProperty(property, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v.ToString() : null;

    public static string FormatMac(byte[] mac) => string.Join(':', mac.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>
    /// Polls <paramref name="condition"/> for at most a few seconds: for state the kernel updates
    /// asynchronously (operstate via linkwatch). A bound, not a timing assertion.
    /// </summary>
    public static void Eventually(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(5))
            {
                Assert.Fail($"still not true after {sw.Elapsed.TotalSeconds:0.0} s: {what}");
            }

            Thread.Sleep(20);
        }
    }
}
