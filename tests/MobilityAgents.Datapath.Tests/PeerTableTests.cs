using System.Net;
using System.Security.Cryptography;

namespace MobilityAgents.Datapath.Tests;

/// <summary>The peer table and the control message format, without a kernel.</summary>
public class PeerTableTests
{
    private static readonly UserspaceTunnelOptions Options = new() { TunName = "t", EnableUdp = true };

    private static TunnelPeer Peer(string id, string inner) => new() { Id = id, Inner = IPNetwork.Parse(inner), OuterAddress = IPAddress.Parse("203.0.113.9") };

    [Fact]
    public void Route_prefers_an_exact_match_then_the_longest_prefix()
    {
        PeerTable t = PeerTable.Build([Peer("host", "192.0.2.77/32"), Peer("net", "198.51.100.0/24"), Peer("other", "203.0.113.0/25")], PeerTable.Empty, Options);

        Assert.Equal("host", t.Route(PeerTable.ToHost(IPAddress.Parse("192.0.2.77")))?.Peer.Id);
        Assert.Equal("net", t.Route(PeerTable.ToHost(IPAddress.Parse("198.51.100.200")))?.Peer.Id);
        Assert.Equal("other", t.Route(PeerTable.ToHost(IPAddress.Parse("203.0.113.5")))?.Peer.Id);
        Assert.Null(t.Route(PeerTable.ToHost(IPAddress.Parse("192.0.2.78"))));
        Assert.Null(t.Route(PeerTable.ToHost(IPAddress.Parse("203.0.113.200"))));
    }

    [Theory]
    [InlineData("0.0.0.0/0", "192.0.2.77/32")]
    [InlineData("192.0.2.0/24", "192.0.2.77/32")]
    [InlineData("192.0.2.77/32", "192.0.2.77/32")]
    public void Overlapping_inner_networks_are_refused(string a, string b) =>
        Assert.Throws<ArgumentException>(() => PeerTable.Build([Peer("a", a), Peer("b", b)], PeerTable.Empty, Options));

    [Fact]
    public void Udp_peers_need_the_udp_socket()
    {
        var ipipOnly = Options with { EnableUdp = false };
        Assert.Throws<ArgumentException>(() => PeerTable.Build([Peer("a", "192.0.2.1/32") with { Encapsulation = OuterEncapsulation.Udp }], PeerTable.Empty, ipipOnly));
    }

    [Fact]
    public void Keepalive_message_matches_the_documented_layout()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        byte[] m = new byte[36];
        KeepaliveMessage.Write(m, KeepaliveMessage.TypeKeepalive, 0x0102030405060708, 0x1112131415161718, key);

        Assert.Equal(new byte[] { 0, 1, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18 }, m[..20]);
        Assert.Equal(HMACSHA256.HashData(key, m.AsSpan(0, 20))[..16], m[20..]);
        Assert.True(KeepaliveMessage.Verify(m, key));
        Assert.True(KeepaliveMessage.TryParse(m, out byte type, out ulong token, out ulong counter));
        Assert.Equal((1, 0x0102030405060708UL, 0x1112131415161718UL), (type, token, counter));
        m[35] ^= 1;
        Assert.False(KeepaliveMessage.Verify(m, key));
    }
}
