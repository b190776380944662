using System.Net;

namespace MobilityAgents.Datapath.Tests;

/// <summary>
/// ipip-in-UDP through real nftables masquerade: the laptop (10.x) behind one NAT, then behind
/// another with a different public address; the home agent follows it only through
/// authenticated keepalives.
/// <code>
///  laptop 10.1.0.2 -- 10.1.0.1 nat1 198.51.100.2 -- 198.51.100.1 home agent
///  laptop 10.2.0.2 -- 10.2.0.1 nat2 203.0.113.2  -- 203.0.113.1  home agent
/// </code>
/// </summary>
public class NatTests
{
    [Fact]
    public void Udp_works_through_masquerade_and_follows_the_laptop_to_another_nat()
    {
        using var home = new TestNamespace();
        using var nat1 = new TestNamespace();
        using var nat2 = new TestNamespace();
        using var laptop = new TestNamespace();
        Net.Veth(home, "h1", "198.51.100.1/24", nat1, "n1pub", "198.51.100.2/24");
        Net.Veth(home, "h2", "203.0.113.1/24", nat2, "n2pub", "203.0.113.2/24");
        Net.Veth(nat1, "n1lan", "10.1.0.1/24", laptop, "l1", "10.1.0.2/24");
        Net.Veth(nat2, "n2lan", "10.2.0.1/24", laptop, "l2", "10.2.0.2/24");
        nat2.IpCmd("route", "add", "198.51.100.0/24", "via", "203.0.113.1");
        laptop.IpCmd("route", "add", "default", "via", "10.1.0.1");
        foreach ((TestNamespace nat, string pub) in new[] { (nat1, "n1pub"), (nat2, "n2pub") })
        {
            Assert.Equal(0, Net.Exec(nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1").Rc);
            Net.Nft(nat, $$"""
                table ip nat {
                  chain post { type nat hook postrouting priority srcnat; oifname "{{pub}}" masquerade; }
                }
                table ip count {
                  chain pre { type filter hook prerouting priority -300; iifname "{{pub}}" udp sport {{TwoHosts.HomePort}} counter; }
                }
                """);
        }

        KeepaliveCredentials creds = TwoHosts.NewCredentials();
        var lab = new TwoHostsView(home);
        using UserspaceTunnel ha = lab.StartHome(creds);
        var learned = new List<IPEndPoint>();
        ha.EndpointLearned += (_, ep) =>
        {
            lock (learned)
            {
                learned.Add(ep);
            }
        };
        using UserspaceTunnel lt = TwoHosts.StartLaptop(laptop, OuterEncapsulation.Udp, creds);

        Net.Eventually(() => ha.EndpointOf("laptop") is not null, "endpoint learned through nat1");
        IPEndPoint first = ha.EndpointOf("laptop")!;
        Assert.Equal(IPAddress.Parse("198.51.100.2"), first.Address); // the masqueraded address, not 10.1.0.2
        Assert.Equal(3, Net.Ping(home, TwoHosts.LaptopHome));
        Assert.Equal(3, Net.Ping(laptop, TwoHosts.HomeInner));
        Net.Eventually(() => lt.LastAckOf("home") is not null, "ack through nat1");

        // The laptop moves: its default route now goes through nat2 (nat1 stays up and mapped).
        laptop.IpCmd("route", "replace", "default", "via", "10.2.0.1");
        lt.SendKeepalivesNow();
        Net.Eventually(() => ha.EndpointOf("laptop") is { } e && !e.Equals(first), "endpoint learned through nat2");
        IPEndPoint second = ha.EndpointOf("laptop")!;
        Assert.Equal(IPAddress.Parse("203.0.113.2"), second.Address);
        Net.Eventually(() => learned.Count == 2, "EndpointLearned raised twice");

        long oldPathBefore = Net.NftPackets(nat1, "ip", "count", "pre");
        long newPathBefore = Net.NftPackets(nat2, "ip", "count", "pre");
        Assert.Equal(3, Net.Ping(home, TwoHosts.LaptopHome));
        Assert.Equal(3, Net.Ping(laptop, TwoHosts.HomeInner));
        Assert.Equal(oldPathBefore, Net.NftPackets(nat1, "ip", "count", "pre")); // the old endpoint gets nothing
        Assert.True(Net.NftPackets(nat2, "ip", "count", "pre") >= newPathBefore + 6);
    }

    /// <summary>The home agent's engine of <see cref="TwoHosts"/> in a namespace of this test.</summary>
    private sealed class TwoHostsView(TestNamespace home)
    {
        public UserspaceTunnel StartHome(KeepaliveCredentials creds)
        {
            UserspaceTunnel t = UserspaceTunnel.Start(new UserspaceTunnelOptions
            {
                TunName = "ma-u0",
                LocalAddress = TwoHosts.HomeOuter,
                EnableIpip = false,
                EnableUdp = true,
                UdpPort = TwoHosts.HomePort,
                Mtu = 1472,
                Namespace = home.Namespace,
            });
            try
            {
                t.SetPeers([new TunnelPeer
                {
                    Id = "laptop",
                    Inner = new IPNetwork(TwoHosts.LaptopHome, 32),
                    OuterAddress = IPAddress.Parse("198.51.100.2"), // the reported care-of address: informational
                    Encapsulation = OuterEncapsulation.Udp,
                    Keepalive = creds,
                }]);
                home.IpCmd("addr", "add", "192.0.2.1/32", "dev", "ma-u0");
                home.IpCmd("route", "add", "192.0.2.77/32", "dev", "ma-u0");
                return t;
            }
            catch
            {
                t.Dispose();
                throw;
            }
        }
    }
}
