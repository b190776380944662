using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace MobilityAgents.Datapath.Tests;

/// <summary>
/// Nothing decapsulated may carry a source its sender does not own: crafted packets from the
/// laptop's namespace (a raw IP_HDRINCL socket, a plain UDP socket) against the home agent's
/// engine, checked with the counters AND with a UDP listener in the home agent's namespace.
/// Each refusal is preceded by a positive control proving the same crafted packet gets through
/// when it is legitimate.
/// </summary>
public class SpoofingTests
{
    private static readonly IPAddress Stranger = IPAddress.Parse("203.0.113.99");
    private static readonly IPAddress NotTheLaptops = IPAddress.Parse("192.0.2.99");
    private const int ListenPort = 9999;

    [Fact]
    public void Raw_ipip_from_a_non_peer_or_with_a_foreign_inner_source_is_not_delivered()
    {
        using var lab = new TwoHosts();
        using UserspaceTunnel home = lab.StartHome(OuterEncapsulation.Ipip, null);
        using UdpClient listener = Listen(lab.Home);
        using Socket raw = lab.Laptop.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Raw)); // IPPROTO_RAW: IP_HDRINCL

        void SendOuter(IPAddress outerSource, IPAddress innerSource, string text) =>
            raw.SendTo(Ipv4(outerSource, TwoHosts.HomeOuter, 4, InnerUdp(innerSource, text)), new IPEndPoint(TwoHosts.HomeOuter, 0));

        SendOuter(TwoHosts.LaptopOuter, TwoHosts.LaptopHome, "legit");
        Assert.Equal("legit", ReceiveText(listener));

        SendOuter(Stranger, TwoHosts.LaptopHome, "outer source is no peer");
        SendOuter(TwoHosts.LaptopOuter, NotTheLaptops, "inner source outside the peer's Inner");
        Assert.Null(ReceiveText(listener));
        Net.Eventually(() => home.Counters.SpoofedSource == 2, "two spoofed drops");
        Assert.Equal(1, home.Counters.RxPackets);

        // Malformed: an outer packet whose inner header claims more bytes than there are.
        byte[] inner = InnerUdp(TwoHosts.LaptopHome, "short");
        raw.SendTo(Ipv4(TwoHosts.LaptopOuter, TwoHosts.HomeOuter, 4, inner.AsSpan(0, inner.Length - 3)), new IPEndPoint(TwoHosts.HomeOuter, 0));
        Net.Eventually(() => home.Counters.Malformed == 1, "malformed drop: " + home.Counters);
        Assert.Null(ReceiveText(listener, 200));
    }

    [Fact]
    public void Udp_data_needs_a_learned_endpoint_and_only_authenticated_fresh_keepalives_teach_one()
    {
        using var lab = new TwoHosts();
        KeepaliveCredentials creds = TwoHosts.NewCredentials();
        using UserspaceTunnel home = lab.StartHome(OuterEncapsulation.Udp, creds);
        using UdpClient listener = Listen(lab.Home);
        using UdpClient attacker = lab.Laptop.Namespace.Run(() => new UdpClient(new IPEndPoint(TwoHosts.LaptopOuter, 0)));
        using UdpClient other = lab.Laptop.Namespace.Run(() => new UdpClient(new IPEndPoint(TwoHosts.LaptopOuter, 0)));
        var homeEndpoint = new IPEndPoint(TwoHosts.HomeOuter, TwoHosts.HomePort);
        var learnedEvents = new List<(string, IPEndPoint)>();
        home.EndpointLearned += (id, ep) =>
        {
            lock (learnedEvents)
            {
                learnedEvents.Add((id, ep));
            }
        };

        // Data before any keepalive: no endpoint learned, so nobody owns 192.0.2.77 over UDP.
        attacker.Send(InnerUdp(TwoHosts.LaptopHome, "too early"), homeEndpoint);
        Assert.Null(ReceiveText(listener));
        Assert.Equal(1, home.Counters.SpoofedSource);

        // A keepalive with a bad HMAC teaches nothing.
        byte[] forged = Keepalive(creds.Token, 1000, new byte[32], type: 1);
        attacker.Send(forged, homeEndpoint);
        Net.Eventually(() => home.Counters.BadKeepalive == 1, "bad keepalive counted");
        Assert.Null(home.EndpointOf("laptop"));

        // The right one does, and is acked with the same token and counter.
        byte[] good = Keepalive(creds.Token, 1000, creds.Key, type: 1);
        attacker.Send(good, homeEndpoint);
        Net.Eventually(() => home.EndpointOf("laptop") is not null, "endpoint learned");
        Assert.Equal((IPEndPoint)attacker.Client.LocalEndPoint!, home.EndpointOf("laptop"));
        attacker.Client.ReceiveTimeout = 2000;
        IPEndPoint? from = null;
        byte[] ack = attacker.Receive(ref from);
        Assert.Equal(homeEndpoint, from);
        Assert.Equal(Keepalive(creds.Token, 1000, creds.Key, type: 2), ack);
        Net.Eventually(() => learnedEvents.Count == 1, "EndpointLearned raised");
        Assert.Equal(("laptop", (IPEndPoint)attacker.Client.LocalEndPoint!), learnedEvents[0]);

        // Replaying it (same counter) is refused, even from another port: the endpoint stays.
        other.Send(good, homeEndpoint);
        Net.Eventually(() => home.Counters.ReplayedKeepalive == 1, "replay refused");
        Assert.Equal((IPEndPoint)attacker.Client.LocalEndPoint!, home.EndpointOf("laptop"));

        // Positive control: data from the learned endpoint with the peer's inner source gets through.
        attacker.Send(InnerUdp(TwoHosts.LaptopHome, "legit"), homeEndpoint);
        Assert.Equal("legit", ReceiveText(listener));

        // From the learned endpoint but a foreign inner source; from another port with the right one.
        attacker.Send(InnerUdp(NotTheLaptops, "foreign inner source"), homeEndpoint);
        other.Send(InnerUdp(TwoHosts.LaptopHome, "unlearned endpoint"), homeEndpoint);
        Assert.Null(ReceiveText(listener));
        Net.Eventually(() => home.Counters.SpoofedSource == 3, "spoofed drops");
        Assert.Equal(1, home.Counters.RxPackets);
        Assert.Equal(1, home.Counters.KeepalivesAccepted);
    }

    private static UdpClient Listen(TestNamespace ns) => ns.Namespace.Run(() => new UdpClient(new IPEndPoint(TwoHosts.HomeInner, ListenPort)));

    private static string? ReceiveText(UdpClient listener, int timeoutMs = 1000)
    {
        listener.Client.ReceiveTimeout = timeoutMs;
        try
        {
            IPEndPoint? from = null;
            return System.Text.Encoding.ASCII.GetString(listener.Receive(ref from));
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
            return null;
        }
    }

    /// <summary>An inner IPv4/UDP packet to 192.0.2.1:9999 (UDP checksum 0: none, allowed over IPv4).</summary>
    private static byte[] InnerUdp(IPAddress source, string text)
    {
        byte[] data = System.Text.Encoding.ASCII.GetBytes(text);
        byte[] udp = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(udp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), ListenPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length);
        data.CopyTo(udp, 8);
        return Ipv4(source, TwoHosts.HomeInner, 17, udp);
    }

    private static byte[] Ipv4(IPAddress source, IPAddress destination, byte protocol, ReadOnlySpan<byte> payload)
    {
        byte[] p = new byte[20 + payload.Length];
        p[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = protocol;
        source.GetAddressBytes().CopyTo(p, 12);
        destination.GetAddressBytes().CopyTo(p, 16);
        uint sum = 0;
        for (int i = 0; i < 20; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(i));
        }

        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), (ushort)~sum);
        payload.CopyTo(p.AsSpan(20));
        return p;
    }

    /// <summary>The control message, written here from the format (not with the product's encoder).</summary>
    private static byte[] Keepalive(ulong token, ulong counter, byte[] key, byte type)
    {
        byte[] m = new byte[36];
        m[1] = 1;
        m[2] = type;
        BinaryPrimitives.WriteUInt64BigEndian(m.AsSpan(4), token);
        BinaryPrimitives.WriteUInt64BigEndian(m.AsSpan(12), counter);
        HMACSHA256.HashData(key, m.AsSpan(0, 20)).AsSpan(0, 16).CopyTo(m.AsSpan(20));
        return m;
    }
}
