using System.Net;
using MobilityAgents.Netlink;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>
/// Real kernel refusals surface as <see cref="NetlinkException"/> with the operation as its ip
/// equivalent, the errno and its name, and the kernel's own explanation (extended ack).
/// </summary>
public class ErrorTests
{
    private static int Veth(TestNamespace ns, string name)
    {
        ns.Handle.Links.AddVeth(name, name + "p");
        return ns.Handle.Links.IndexOf(name);
    }

    [Fact]
    public void Mtu_outside_the_device_range_is_refused_with_the_kernel_reason_and_nothing_changes()
    {
        using var ns = new TestNamespace();
        int e0 = Veth(ns, "e0");

        NetlinkException high = Assert.Throws<NetlinkException>(() => ns.Handle.Links.SetMtu(e0, 70000));
        NetlinkException low = Assert.Throws<NetlinkException>(() => ns.Handle.Links.SetMtu(e0, 10));

        Assert.Equal($"ip link set dev (ifindex {e0}) mtu 70000", high.Operation);
        Assert.Equal(Errno.EINVAL, high.Errno);
        Assert.Equal("EINVAL", high.ErrnoName);
        Assert.Equal("mtu greater than device maximum", high.ExtAckMessage);
        Assert.Equal($"ip link set dev (ifindex {e0}) mtu 70000: EINVAL (Invalid argument): mtu greater than device maximum", high.Message);
        Assert.NotEqual(0u, high.Sequence);
        Assert.Equal("mtu less than device minimum", low.ExtAckMessage);
        Assert.NotEqual(high.Sequence, low.Sequence);
        Assert.False(high.IsExists);
        Assert.False(high.IsNotFound);
        Assert.Equal(1500, Oracle.Link(ns, "e0").GetProperty("mtu").GetInt32());
    }

    [Fact]
    public void Operations_on_a_missing_link_index_are_refused_with_ENODEV()
    {
        using var ns = new TestNamespace();

        NetlinkException up = Assert.Throws<NetlinkException>(() => ns.Handle.Links.SetUp(987_654));
        NetlinkException alias = Assert.Throws<NetlinkException>(() => ns.Handle.Links.SetAlias(987_654, "x"));
        NetlinkException neigh = Assert.Throws<NetlinkException>(() => ns.Handle.Neighbours.Add(
            new NeighbourEntry { InterfaceIndex = 987_654, Destination = IPAddress.Parse("192.0.2.10"), Proxy = true }));

        Assert.Equal("ip link set dev (ifindex 987654) up", up.Operation);
        Assert.Equal(Errno.ENODEV, up.Errno);
        Assert.Equal("ENODEV", up.ErrnoName);
        Assert.Contains("ENODEV", up.Message, StringComparison.Ordinal);
        Assert.Equal("ip link set dev (ifindex 987654) alias \"x\"", alias.Operation);
        Assert.Equal(Errno.ENODEV, alias.Errno);
        Assert.Equal("ip neigh add proxy 192.0.2.10 dev (ifindex 987654)", neigh.Operation);
        Assert.Equal(Errno.ENODEV, neigh.Errno);
    }

    [Fact]
    public void A_route_through_a_device_that_is_down_is_refused_with_ENETDOWN()
    {
        using var ns = new TestNamespace();
        int e0 = Veth(ns, "e0");
        var route = new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, OutputInterface = e0, Table = 100, Protocol = 77 };

        NetlinkException e = Assert.Throws<NetlinkException>(() => ns.Handle.Routes.Add(route));

        Assert.Equal(Errno.ENETDOWN, e.Errno);
        Assert.Equal("ENETDOWN", e.ErrnoName);
        Assert.Equal("Device for nexthop is not up", e.ExtAckMessage);
        Assert.Equal($"ip route add 203.0.113.0/24 dev (ifindex {e0}) table 100 proto 77", e.Operation);
        Assert.Empty(ns.Handle.Routes.List(100));

        // Once it is up, the same request succeeds.
        ns.Handle.Links.SetUp(e0);
        ns.Handle.Routes.Add(route);
        Assert.Single(ns.IpJson("route", "show", "table", "100").EnumerateArray());
    }

    [Fact]
    public void An_attribute_failing_the_kernel_policy_is_pointed_at_by_offset()
    {
        using var ns = new TestNamespace();
        // Rules take interface names as strings without checking them here; the kernel's policy
        // limits FRA_IIFNAME to IFNAMSIZ-1 characters.
        var rule = new RuleEntry { InputInterface = "name-longer-than-15", Table = 100, Priority = 900 };

        NetlinkException e = Assert.Throws<NetlinkException>(() => ns.Handle.Rules.Add(rule));

        Assert.Equal("ip rule add from all iif name-longer-than-15 lookup 100 priority 900", e.Operation);
        Assert.NotNull(e.ExtAckMessage);
        // nlmsghdr (16) + fib_rule_hdr (12): FRA_IIFNAME is the first attribute of the request.
        Assert.Equal(28, e.ExtAckOffset);
        Assert.Contains("(at offset 28 of the request)", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(ns.IpJson("rule", "show").EnumerateArray(), r => r.Str("priority") == "900");
    }

    [Theory]
    [InlineData(100u)]
    [InlineData(4000u)]
    public void Deleting_a_route_in_a_table_that_does_not_exist_returns_false(uint table)
    {
        using var ns = new TestNamespace();

        Assert.False(ns.Handle.Routes.Delete(new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, Table = table, Protocol = 77 }));
        Assert.All(ns.Handle.Routes.DeleteMany([new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, Table = table }]), Assert.Null);
    }

    [Fact]
    public void Deletes_of_things_that_are_not_there_return_false_without_throwing()
    {
        using var ns = new TestNamespace();
        int e0 = Veth(ns, "e0");

        Assert.False(ns.Handle.Addresses.Delete(new AddressEntry { InterfaceIndex = e0, Local = IPAddress.Parse("192.0.2.1"), PrefixLength = 24 }));
        Assert.False(ns.Handle.Rules.Delete(new RuleEntry { Source = IPAddress.Parse("192.0.2.1"), SourcePrefixLength = 32, Table = 100, Priority = 1234 }));
        Assert.False(ns.Handle.Neighbours.Delete(new NeighbourEntry { InterfaceIndex = e0, Destination = IPAddress.Parse("192.0.2.1") }));
        Assert.False(ns.Handle.Neighbours.Delete(new NeighbourEntry { InterfaceIndex = e0, Destination = IPAddress.Parse("192.0.2.1"), Proxy = true }));
        Assert.False(ns.Handle.Routes.Delete(new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24 }));
        Assert.False(ns.Handle.Links.Delete("e9"));
    }

    [Fact]
    public void A_disposed_handle_refuses_work_instead_of_using_a_closed_descriptor()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = RouteNetlink.Open(ns.Namespace);
        Assert.Single(h.Links.List());

        h.Dispose();

        Assert.Throws<ObjectDisposedException>(() => h.Links.List());
        Assert.Throws<ObjectDisposedException>(() => h.Routes.AddMany([new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24 }]));
        h.Dispose(); // twice is harmless
    }

    [Fact]
    public void The_handle_keeps_working_after_a_refusal()
    {
        using var ns = new TestNamespace();
        int e0 = Veth(ns, "e0");
        var addr = new AddressEntry { InterfaceIndex = e0, Local = IPAddress.Parse("192.0.2.1"), PrefixLength = 24 };
        ns.Handle.Addresses.Add(addr);
        Assert.Throws<NetlinkException>(() => ns.Handle.Addresses.Add(addr));
        Assert.Throws<NetlinkException>(() => ns.Handle.Links.SetMtu(e0, 70000));

        // No stale ack is taken for the next request's answer.
        ns.Handle.Links.SetMtu(e0, 1400);
        Assert.Equal(1400, Oracle.Link(ns, "e0").GetProperty("mtu").GetInt32());
        Assert.Single(ns.Handle.Addresses.List(e0));
    }
}
