using System.Net;
using System.Net.NetworkInformation;
using System.Text.Json;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>Neighbour and proxy-ARP entries (<c>ip neigh</c>), read back with <c>ip -j neigh show [proxy]</c>.</summary>
public class NeighbourTests
{
    private static readonly IPAddress Host = IPAddress.Parse("192.0.2.10");
    private static readonly PhysicalAddress Mac1 = PhysicalAddress.Parse("02-00-5E-00-53-01");
    private static readonly PhysicalAddress Mac2 = PhysicalAddress.Parse("02-00-5E-00-53-02");

    private static int Setup(TestNamespace ns)
    {
        ns.Handle.Links.AddVeth("nb0", "nb0p");
        return ns.Handle.Links.IndexOf("nb0");
    }

    private static List<JsonElement> IpProxies(TestNamespace ns) => [.. ns.IpJson("neigh", "show", "proxy").EnumerateArray()];

    private static List<JsonElement> IpNeighbours(TestNamespace ns) => [.. ns.IpJson("-4", "neigh", "show").EnumerateArray()];

    [Fact]
    public void Proxy_entry_add_duplicate_add_delete_duplicate_delete()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int nb0 = Setup(ns);
        var proxy = new NeighbourEntry { InterfaceIndex = nb0, Destination = Host, Proxy = true };

        h.Neighbours.Add(proxy);

        JsonElement ip = Assert.Single(IpProxies(ns));
        Assert.Equal("192.0.2.10", ip.Str("dst"));
        Assert.Equal("nb0", ip.Str("dev"));
        Assert.True(ip.TryGetProperty("proxy", out _));
        Assert.Empty(IpNeighbours(ns)); // a proxy entry is not an ARP entry
        NeighbourEntry ours = Assert.Single(h.Neighbours.List(proxy: true));
        Assert.True(ours.Proxy);
        Assert.Equal(Host, ours.Destination);
        Assert.Equal(nb0, ours.InterfaceIndex);
        Assert.Empty(h.Neighbours.List(proxy: false));

        // The kernel treats a second add of a proxy entry as a no-op (no EEXIST for proxies,
        // unlike ordinary entries): the library reports no error and nothing is duplicated.
        h.Neighbours.Add(proxy);
        Assert.Single(IpProxies(ns));
        Assert.Single(h.Neighbours.List(proxy: true));

        Assert.True(h.Neighbours.Delete(proxy));
        Assert.Empty(IpProxies(ns));
        Assert.Empty(h.Neighbours.List(proxy: true));

        Assert.False(h.Neighbours.Delete(proxy));
    }

    [Fact]
    public void Proxy_entries_on_two_interfaces_are_separate()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int nb0 = Setup(ns);
        int nb0p = h.Links.IndexOf("nb0p");

        h.Neighbours.Add(new NeighbourEntry { InterfaceIndex = nb0, Destination = Host, Proxy = true });
        h.Neighbours.Add(new NeighbourEntry { InterfaceIndex = nb0p, Destination = Host, Proxy = true });
        h.Neighbours.Add(new NeighbourEntry { InterfaceIndex = nb0, Destination = IPAddress.Parse("192.0.2.11"), Proxy = true });

        Assert.Equal(
            ["192.0.2.10 nb0", "192.0.2.10 nb0p", "192.0.2.11 nb0"],
            IpProxies(ns).Select(p => $"{p.Str("dst")} {p.Str("dev")}").Order(StringComparer.Ordinal));
        Assert.Equal(
            IpProxies(ns).Select(p => $"{p.Str("dst")} {p.Str("dev")}").Order(StringComparer.Ordinal),
            h.Neighbours.List(proxy: true).Select(n => $"{n.Destination} {h.Links.Get(n.InterfaceIndex)?.Name}").Order(StringComparer.Ordinal));

        Assert.True(h.Neighbours.Delete(new NeighbourEntry { InterfaceIndex = nb0p, Destination = Host, Proxy = true }));
        Assert.Equal(["192.0.2.10 nb0", "192.0.2.11 nb0"], IpProxies(ns).Select(p => $"{p.Str("dst")} {p.Str("dev")}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Permanent_entry_with_lladdr_add_duplicate_add_replace_delete_duplicate_delete()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int nb0 = Setup(ns);
        var entry = new NeighbourEntry { InterfaceIndex = nb0, Destination = Host, LinkLayerAddress = Mac1 };

        h.Neighbours.Add(entry);

        JsonElement ip = Assert.Single(IpNeighbours(ns));
        Assert.Equal("192.0.2.10", ip.Str("dst"));
        Assert.Equal("nb0", ip.Str("dev"));
        Assert.Equal("02:00:5e:00:53:01", ip.Str("lladdr"));
        Assert.Equal(["PERMANENT"], ip.GetProperty("state").EnumerateArray().Select(s => s.GetString()));
        Assert.Empty(IpProxies(ns));
        NeighbourEntry ours = Assert.Single(h.Neighbours.List(proxy: false));
        Assert.Equal(Host, ours.Destination);
        Assert.Equal(Mac1, ours.LinkLayerAddress);
        Assert.Equal(NUD_PERMANENT, ours.State);
        Assert.False(ours.Proxy);
        Assert.Empty(h.Neighbours.List(proxy: true));

        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Neighbours.Add(entry with { LinkLayerAddress = Mac2 }));
        Assert.True(e.IsExists);
        Assert.Equal("EEXIST", e.ErrnoName);
        Assert.Equal($"ip neigh add 192.0.2.10 lladdr 02:00:5e:00:53:02 dev (ifindex {nb0}) nud 0x80", e.Operation);
        Assert.Contains(e.Operation, e.Message, StringComparison.Ordinal);
        Assert.Equal("02:00:5e:00:53:01", Assert.Single(IpNeighbours(ns)).Str("lladdr"));

        h.Neighbours.Replace(entry with { LinkLayerAddress = Mac2 });
        Assert.Equal("02:00:5e:00:53:02", Assert.Single(IpNeighbours(ns)).Str("lladdr"));
        Assert.Equal(Mac2, Assert.Single(h.Neighbours.List(proxy: false)).LinkLayerAddress);

        Assert.True(h.Neighbours.Delete(entry));
        Assert.Empty(IpNeighbours(ns));
        Assert.Empty(h.Neighbours.List(proxy: false));

        Assert.False(h.Neighbours.Delete(entry));
    }

    [Fact]
    public void Deleting_a_proxy_entry_leaves_an_ordinary_entry_for_the_same_address()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        int nb0 = Setup(ns);
        var entry = new NeighbourEntry { InterfaceIndex = nb0, Destination = Host, LinkLayerAddress = Mac1 };
        var proxy = new NeighbourEntry { InterfaceIndex = nb0, Destination = Host, Proxy = true };
        h.Neighbours.Add(entry);
        h.Neighbours.Add(proxy);

        Assert.True(h.Neighbours.Delete(proxy));

        Assert.Empty(IpProxies(ns));
        Assert.Equal("02:00:5e:00:53:01", Assert.Single(IpNeighbours(ns)).Str("lladdr"));
        Assert.False(h.Neighbours.Delete(proxy));

        Assert.True(h.Neighbours.Delete(entry));
        Assert.Empty(IpNeighbours(ns));
    }
}
