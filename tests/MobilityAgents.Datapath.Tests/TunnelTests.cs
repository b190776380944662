using System.Net;

namespace MobilityAgents.Datapath.Tests;

/// <summary>Two userspace engines, home agent and laptop, in two namespaces: ping and TCP both ways.</summary>
public class TunnelTests
{
    [Theory]
    [InlineData(OuterEncapsulation.Ipip)]
    [InlineData(OuterEncapsulation.Udp)]
    public void Ping_and_tcp_both_ways_through_the_userspace_tunnel(OuterEncapsulation encapsulation)
    {
        using var lab = new TwoHosts();
        KeepaliveCredentials? creds = encapsulation == OuterEncapsulation.Udp ? TwoHosts.NewCredentials() : null;
        using UserspaceTunnel home = lab.StartHome(encapsulation, creds);
        using UserspaceTunnel laptop = TwoHosts.StartLaptop(lab.Laptop, encapsulation, creds);
        if (encapsulation == OuterEncapsulation.Udp)
        {
            // The keepalive sent by SetPeers teaches the home agent the laptop's endpoint.
            Net.Eventually(() => home.EndpointOf("laptop") is not null, "endpoint learned");
            Assert.Equal(new IPEndPoint(TwoHosts.LaptopOuter, laptop.UdpPort), home.EndpointOf("laptop"));
            Net.Eventually(() => laptop.LastAckOf("home") is not null, "ack received");
            Assert.NotEqual(0, laptop.UdpPort);
        }

        Assert.Equal(3, Net.Ping(lab.Home, TwoHosts.LaptopHome));
        Assert.Equal(3, Net.Ping(lab.Laptop, TwoHosts.HomeInner));
        Net.Tcp(lab.Laptop, TwoHosts.LaptopHome, lab.Home);
        Net.Tcp(lab.Home, TwoHosts.HomeInner, lab.Laptop);

        UserspaceTunnelCounters h = home.Counters, l = laptop.Counters;
        Assert.True(h.TxPackets > 700 && h.RxPackets > 700, h.ToString()); // 2 MiB each way in MTU-sized packets
        Assert.True(l.TxPackets > 700 && l.RxPackets > 700, l.ToString());
        Assert.Equal(0, h.SpoofedSource + h.Malformed + h.SendError + l.SpoofedSource + l.Malformed + l.SendError);

        // The TUN carries the MTU and alias set by the engine.
        var link = lab.Home.IpJson("link", "show", "ma-u0")[0];
        Assert.Equal(encapsulation == OuterEncapsulation.Udp ? 1472 : 1480, link.GetProperty("mtu").GetInt32());
        Assert.Equal("mobilityagents:userspace", link.GetProperty("ifalias").GetString());
        Assert.Equal(home.TunIndex, link.GetProperty("ifindex").GetInt32());
    }

    [Fact]
    public void Dispose_removes_the_tun_link_and_a_failed_start_leaves_nothing_behind()
    {
        using var lab = new TwoHosts();
        using (UserspaceTunnel t = lab.StartHome(OuterEncapsulation.Ipip, null))
        {
            Assert.Contains(lab.Home.IpJson("link", "show").EnumerateArray(), l => l.GetProperty("ifname").GetString() == "ma-u0");
        }

        Net.Eventually(() => !lab.Home.IpJson("link", "show").EnumerateArray().Any(l => l.GetProperty("ifname").GetString() == "ma-u0"), "TUN gone");

        // The UDP port is taken: bind fails, and the TUN made before it is removed.
        using System.Net.Sockets.Socket taken = lab.Home.Namespace.Run(() =>
        {
            var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Any, 4499));
            return s;
        });
        var e = Assert.Throws<DatapathException>(() => UserspaceTunnel.Start(new UserspaceTunnelOptions
        {
            TunName = "ma-u1",
            EnableUdp = true,
            UdpPort = 4499,
            Namespace = lab.Home.Namespace,
        }));
        Assert.Contains("bind 0.0.0.0:4499", e.Message, StringComparison.Ordinal);
        Assert.Contains("EADDRINUSE", e.Message, StringComparison.Ordinal);
        Net.Eventually(() => !lab.Home.IpJson("link", "show").EnumerateArray().Any(l => l.GetProperty("ifname").GetString() == "ma-u1"), "failed start's TUN gone");
    }

    [Fact]
    public void SetPeers_validates_and_keeps_learned_state_of_unchanged_peers()
    {
        using var lab = new TwoHosts();
        KeepaliveCredentials creds = TwoHosts.NewCredentials();
        using UserspaceTunnel home = lab.StartHome(OuterEncapsulation.Udp, creds);
        using UserspaceTunnel laptop = TwoHosts.StartLaptop(lab.Laptop, OuterEncapsulation.Udp, creds);
        Net.Eventually(() => home.EndpointOf("laptop") is not null, "endpoint learned");
        IPEndPoint learned = home.EndpointOf("laptop")!;

        TunnelPeer same = new() { Id = "laptop", Inner = IPNetwork.Parse("192.0.2.77/32"), OuterAddress = TwoHosts.LaptopOuter, Encapsulation = OuterEncapsulation.Udp, Keepalive = creds };
        TunnelPeer other = same with { Id = "other", Inner = IPNetwork.Parse("192.0.2.64/26"), Keepalive = null };
        Assert.Throws<ArgumentException>(() => home.SetPeers([same, other])); // overlapping Inner
        Assert.Throws<ArgumentException>(() => home.SetPeers([same, same])); // duplicate id
        Assert.Throws<ArgumentException>(() => home.SetPeers([same with { Keepalive = new KeepaliveCredentials(1, new byte[5]) }]));
        Assert.Equal(learned, home.EndpointOf("laptop")); // a refused table changes nothing

        home.SetPeers([same, other with { Inner = IPNetwork.Parse("192.0.2.128/25") }]);
        Assert.Equal(learned, home.EndpointOf("laptop")); // same id and token: endpoint kept
        Assert.Null(home.EndpointOf("other"));

        home.SetPeers([same with { Keepalive = creds with { Token = creds.Token + 1 } }]);
        Assert.Null(home.EndpointOf("laptop")); // a new token starts over
    }
}
