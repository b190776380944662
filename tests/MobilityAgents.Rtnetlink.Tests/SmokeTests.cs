using System.Net;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

public class SmokeTests
{
    [Fact]
    public void Dummy_link_address_route_rule_neighbour_round_trip()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("d0", "d0peer"); // this host has no dummy module; veth is everywhere
        int d0 = h.Links.IndexOf("d0");
        h.Links.SetUp(d0);
        h.Addresses.Add(new AddressEntry { InterfaceIndex = d0, Local = IPAddress.Parse("192.0.2.1"), PrefixLength = 24 });
        h.Routes.Add(new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, Gateway = IPAddress.Parse("192.0.2.254"), OutputInterface = d0, Table = 100, Protocol = 77 });
        h.Rules.Add(new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 100, Priority = 1000, Protocol = 77 });
        h.Neighbours.Add(new NeighbourEntry { InterfaceIndex = d0, Destination = IPAddress.Parse("192.0.2.10"), Proxy = true });

        Assert.Contains("203.0.113.0/24 via 192.0.2.254 dev d0 proto 77", ns.IpCmd("route", "show", "table", "100"), StringComparison.Ordinal);
        Assert.Contains("from 192.0.2.10 lookup 100 proto 77", ns.IpCmd("rule", "show"), StringComparison.Ordinal);
        Assert.Contains("192.0.2.10 dev d0 proxy", ns.IpCmd("neigh", "show", "proxy"), StringComparison.Ordinal);
        Assert.Single(h.Routes.List(100));
        Assert.Contains(h.Rules.List(), r => r.Priority == 1000 && r.Table == 100 && r.Protocol == 77);
        Assert.Contains(h.Neighbours.List(proxy: true), n => n.Destination.Equals(IPAddress.Parse("192.0.2.10")));
        Assert.Contains(h.Addresses.List(d0), a => a.Local.Equals(IPAddress.Parse("192.0.2.1")) && a.PrefixLength == 24);
        Assert.True(h.Links.Delete("d0"));
        Assert.False(h.Links.Delete("d0"));
        Assert.Empty(h.Routes.List(100));
        _ = RT_TABLE_MAIN;
    }
}
