using System.Net;
using System.Text.RegularExpressions;

namespace MobilityAgents.Datapath.Tests;

/// <summary>
/// The userspace engine against the kernel's own ipip and FOU (kernel VM: this host has neither).
/// The kernel side plays the home agent (198.51.100.1, inner 192.0.2.1), the engine the laptop.
/// </summary>
[Trait("Kernel", "ipip")]
public partial class KernelInteropTests(ITestOutputHelper output)
{
    [Fact]
    public void Kernel_ipip_link_and_userspace_ipip_engine_ping_and_tcp_both_ways()
    {
        using var lab = new TwoHosts();
        Ethtool.DisableTxChecksum(lab.Home, "h0");
        KernelIpipLink(lab.Home);
        using UserspaceTunnel laptop = TwoHosts.StartLaptop(lab.Laptop, OuterEncapsulation.Ipip, null);

        Assert.True(Net.Ping(lab.Home, TwoHosts.LaptopHome) >= 2);
        Assert.True(Net.Ping(lab.Laptop, TwoHosts.HomeInner) >= 2);
        // Observed: with the ipip module loaded, the kernel also hands every protocol-4 packet of
        // the engine's namespace to tunnel4; no ipip link matches (tunl0 is down), so it answers
        // ICMP port unreachable (rate-limited, ~1/s). The peer's ipip link counts those as link
        // errors (for 30 s) and reports EHOSTUNREACH to its next local senders: pings pass, but
        // a TCP connect fails with "No route to host". The companion nftables rule drops those
        // ICMP errors (inner protocol 4 = byte 17 of the ICMP message) in the engine's namespace.
        string before = IcmpOutDestUnreachs(lab.Laptop);
        output.WriteLine($"engine namespace, ICMP dest-unreachable sent during 6 pings without the rule: {before}");
        Net.Nft(lab.Laptop, """
            table ip ma_userspace_ipip {
              chain out { type filter hook output priority 0; icmp type destination-unreachable @th,136,8 4 counter drop; }
            }
            """);
        lab.Home.IpCmd("link", "del", "ipip0"); // forget the link errors it counted
        KernelIpipLink(lab.Home);

        Assert.True(Net.Ping(lab.Home, TwoHosts.LaptopHome) >= 2);
        Assert.True(Net.Ping(lab.Laptop, TwoHosts.HomeInner) >= 2);
        Net.Tcp(lab.Laptop, TwoHosts.LaptopHome, lab.Home, 256 << 10);
        Net.Tcp(lab.Home, TwoHosts.HomeInner, lab.Laptop, 256 << 10);
        output.WriteLine($"engine: {laptop.Counters}");
        output.WriteLine($"ICMP errors the rule dropped: {Net.NftPackets(lab.Laptop, "ip", "ma_userspace_ipip", "out")}");
        Assert.Equal(0, laptop.Counters.SpoofedSource);
    }

    private static void KernelIpipLink(TestNamespace ns)
    {
        ns.IpCmd("link", "add", "ipip0", "type", "ipip", "local", "198.51.100.1", "remote", "203.0.113.10");
        ns.IpCmd("addr", "add", "192.0.2.1/32", "dev", "ipip0");
        ns.IpCmd("link", "set", "ipip0", "up");
        ns.IpCmd("route", "add", "192.0.2.77/32", "dev", "ipip0");
    }

    [Fact]
    public void Kernel_fou_link_and_userspace_udp_engine_with_a_fixed_endpoint_ping_both_ways()
    {
        using var lab = new TwoHosts();
        const string EnginePort = "6666";
        lab.Home.IpCmd("fou", "add", "port", "5555", "ipproto", "4");
        lab.Home.IpCmd("link", "add", "fou0", "type", "ipip", "remote", "203.0.113.10", "local", "198.51.100.1",
            "encap", "fou", "encap-sport", "5555", "encap-dport", EnginePort);
        lab.Home.IpCmd("addr", "add", "192.0.2.1/32", "dev", "fou0");
        lab.Home.IpCmd("link", "set", "fou0", "up");
        lab.Home.IpCmd("route", "add", "192.0.2.77/32", "dev", "fou0");
        using UserspaceTunnel laptop = UserspaceTunnel.Start(new UserspaceTunnelOptions
        {
            TunName = "ma-tun0",
            EnableIpip = false,
            EnableUdp = true,
            UdpPort = ushort.Parse(EnginePort, System.Globalization.CultureInfo.InvariantCulture),
            Mtu = 1472,
            Namespace = lab.Laptop.Namespace,
        });
        laptop.SetPeers([new TunnelPeer
        {
            Id = "home",
            Inner = new IPNetwork(IPAddress.Any, 0),
            OuterAddress = TwoHosts.HomeOuter,
            Encapsulation = OuterEncapsulation.Udp,
            UdpPort = 5555, // the kernel's FOU port and encap-sport: a fixed endpoint both ways
        }]);
        lab.Laptop.IpCmd("addr", "add", "192.0.2.77/32", "dev", "ma-tun0");
        lab.Laptop.IpCmd("route", "add", "192.0.2.1/32", "dev", "ma-tun0", "src", "192.0.2.77");

        Assert.True(Net.Ping(lab.Home, TwoHosts.LaptopHome) >= 2);
        Assert.True(Net.Ping(lab.Laptop, TwoHosts.HomeInner) >= 2);
        output.WriteLine($"engine: {laptop.Counters}");
        Assert.Equal(0, laptop.Counters.SpoofedSource);
    }

    private static string IcmpOutDestUnreachs(TestNamespace ns)
    {
        string snmp = Net.Exec(ns, "cat", "/proc/net/snmp").Stdout;
        string[] icmp = snmp.Split('\n').Where(l => l.StartsWith("Icmp:", StringComparison.Ordinal)).ToArray();
        if (icmp.Length < 2)
        {
            return "?";
        }

        string[] names = Spaces().Split(icmp[0].Trim());
        string[] values = Spaces().Split(icmp[1].Trim());
        int i = Array.IndexOf(names, "OutDestUnreachs");
        return i >= 0 && i < values.Length ? values[i] : "?";
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
