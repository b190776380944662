using System.Net;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>Routes.Get (ip route get): how the mobile agent finds its care-of address.</summary>
public class RouteGetTests
{
    [Fact]
    public void Get_returns_the_source_address_interface_and_gateway_the_kernel_would_use()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("v0", "v0p");
        int v0 = h.Links.IndexOf("v0");
        h.Links.SetUp(v0);
        h.Links.SetUp(h.Links.IndexOf("v0p"));
        h.Addresses.Add(new AddressEntry { InterfaceIndex = v0, Local = IPAddress.Parse("198.51.100.10"), PrefixLength = 24 });
        h.Routes.Add(new RouteEntry { Gateway = IPAddress.Parse("198.51.100.1"), OutputInterface = v0 });

        RouteEntry? r = h.Routes.Get(IPAddress.Parse("203.0.113.9"));

        Assert.NotNull(r);
        Assert.Equal(IPAddress.Parse("198.51.100.10"), r.PreferredSource);
        Assert.Equal(v0, r.OutputInterface);
        Assert.Equal(IPAddress.Parse("198.51.100.1"), r.Gateway);
        // The oracle agrees.
        string oracle = ns.IpCmd("route", "get", "203.0.113.9");
        Assert.Contains("via 198.51.100.1 dev v0 src 198.51.100.10", oracle, StringComparison.Ordinal);
    }

    [Fact]
    public void Get_without_a_route_returns_null()
    {
        using var ns = new TestNamespace();
        Assert.Null(ns.Handle.Routes.Get(IPAddress.Parse("203.0.113.9")));
    }

    [Fact]
    public void Get_honours_the_mark_through_fwmark_rules()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("v0", "v0p");
        int v0 = h.Links.IndexOf("v0");
        h.Links.SetUp(v0);
        h.Links.SetUp(h.Links.IndexOf("v0p"));
        h.Routes.Add(new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, OutputInterface = v0, Table = 300 });
        h.Rules.Add(new RuleEntry { FwMark = 0x100000, FwMask = 0x100000, Table = 300, Priority = 10000 });

        Assert.Null(h.Routes.Get(IPAddress.Parse("203.0.113.9")));
        RouteEntry? marked = h.Routes.Get(IPAddress.Parse("203.0.113.9"), mark: 0x100000);
        Assert.NotNull(marked);
        Assert.Equal(v0, marked.OutputInterface);
        Assert.Equal(300u, marked.Table);
    }
}
