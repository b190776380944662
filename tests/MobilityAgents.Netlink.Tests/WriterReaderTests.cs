using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Netlink.Tests;

/// <summary>
/// <see cref="NetlinkWriter"/> against <see cref="MessageReader"/> and <see cref="AttributeReader"/>:
/// the byte layout the writer produces (checked byte by byte where it matters: lengths, flags,
/// padding, byte order) and that the readers give back what was written. No socket involved.
/// </summary>
public class WriterReaderTests
{
    [Fact]
    public void Message_header_is_written_little_endian_and_nlmsg_len_back_patched()
    {
        byte[] buf = new byte[64];
        var w = new NetlinkWriter(buf);
        int m = w.BeginMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, sequence: 0x01020304, portId: 0x0a0b0c0d);
        Assert.Equal(0, m);
        w.Reserve(SizeofIfinfomsg)[4] = 7;
        w.EndMessage(m);

        Assert.Equal(32, w.Length);
        Assert.Equal(new byte[]
        {
            32, 0, 0, 0,            // nlmsg_len, back-patched
            16, 0,                  // nlmsg_type RTM_NEWLINK
            0x05, 0,                // nlmsg_flags NLM_F_REQUEST | NLM_F_ACK
            0x04, 0x03, 0x02, 0x01, // nlmsg_seq
            0x0d, 0x0c, 0x0b, 0x0a, // nlmsg_pid
        }, buf[..16]);

        NetlinkMessage read = Assert.Single(MessageReader.ReadAll(buf.AsMemory(0, w.Length)));
        Assert.Equal(new NetlinkMessageHeader(32, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0x01020304, 0x0a0b0c0d), read.Header);
        Assert.Equal(SizeofIfinfomsg, read.Payload.Length);
        Assert.Equal(7, read.Payload.Span[4]);
    }

    [Fact]
    public void EndMessage_pads_to_NLMSG_ALIGNTO_and_counts_the_padding()
    {
        byte[] buf = Dirty(64);
        var w = new NetlinkWriter(buf);
        int m = w.BeginMessage(RTM_NEWADDR, 0);
        w.Reserve(SizeofIfaddrmsg);
        w.WriteU8(IFA_PROTO, 77);
        w.EndMessage(m);

        // 16 header + 8 ifaddrmsg + 5 attribute + 3 padding.
        Assert.Equal(32, w.Length);
        Assert.Equal(32u, BinaryPrimitives.ReadUInt32LittleEndian(buf));
        Assert.Equal(5, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(24))); // nla_len excludes the padding
        Assert.Equal(new byte[] { 0, 0, 0 }, buf[29..32]);
    }

    [Fact]
    public void Several_messages_in_one_buffer_are_read_back_in_order()
    {
        byte[] buf = new byte[256];
        var w = new NetlinkWriter(buf);
        for (ushort i = 0; i < 3; i++)
        {
            int m = w.BeginMessage(RTM_NEWROUTE, NLM_F_CREATE, sequence: i);
            w.Reserve(SizeofRtmsg);
            w.WriteU8(RTA_TABLE, (byte)i); // 5 bytes: every message needs padding
            w.EndMessage(m);
        }

        List<NetlinkMessage> read = MessageReader.ReadAll(buf.AsMemory(0, w.Length));
        Assert.Equal([0u, 1u, 2u], read.Select(r => r.Header.Sequence));
        Assert.All(read, r => Assert.Equal(36u, r.Header.Length));
        Assert.Equal([(byte)0, (byte)1, (byte)2], read.Select(r => AttributeReader.ReadAll(r.Payload[SizeofRtmsg..], "test").Single().U8()));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public void Attributes_are_padded_to_4_bytes_with_zeros(int payloadLength)
    {
        byte[] buf = Dirty(64);
        var w = new NetlinkWriter(buf);
        byte[] payload = Enumerable.Range(1, payloadLength).Select(i => (byte)i).ToArray();
        w.WriteBytes(100, payload);
        w.WriteU32(101, 0xdeadbeef);

        int padded = Align.NlaAlign(Align.NLA_HDRLEN + payloadLength);
        Assert.Equal(padded + 8, w.Length);
        Assert.Equal(Align.NLA_HDRLEN + payloadLength, BinaryPrimitives.ReadUInt16LittleEndian(buf));
        Assert.Equal(100, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(2)));
        Assert.Equal(payload, buf[4..(4 + payloadLength)]);
        Assert.All(buf[(4 + payloadLength)..padded], b => Assert.Equal(0, b));

        List<NetlinkAttribute> read = AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test");
        Assert.Equal(2, read.Count);
        Assert.Equal(payload, read[0].Payload.ToArray());
        Assert.Equal(0xdeadbeefu, read[1].U32());
    }

    [Fact]
    public void BeginNested_sets_NLA_F_NESTED_and_back_patches_the_length_of_every_level()
    {
        byte[] buf = Dirty(128);
        var w = new NetlinkWriter(buf);
        int outer = w.BeginNested(RTA_ENCAP);
        w.WriteAddress(LWTUNNEL_IP_DST, IPAddress.Parse("192.0.2.9"));
        int inner = w.BeginNested(LWTUNNEL_IP_FLAGS);
        w.WriteU8(LWTUNNEL_IP_TTL, 7);
        w.EndNested(inner);
        w.EndNested(outer);
        w.WriteU16(RTA_ENCAP_TYPE, LWTUNNEL_ENCAP_IP);

        // outer: 4 header + 8 (LWTUNNEL_IP_DST) + inner (4 header + 5 TTL + 3 pad) = 24.
        Assert.Equal(24, BinaryPrimitives.ReadUInt16LittleEndian(buf));
        Assert.Equal(RTA_ENCAP | NLA_F_NESTED, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(2)));
        Assert.Equal(12, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(12)));
        Assert.Equal(LWTUNNEL_IP_FLAGS | NLA_F_NESTED, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(14)));

        List<NetlinkAttribute> top = AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test");
        Assert.Equal(2, top.Count);
        Assert.Equal(RTA_ENCAP, top[0].Type);
        Assert.True(top[0].Nested);
        Assert.Equal(RTA_ENCAP | NLA_F_NESTED, top[0].RawType);
        Assert.Equal(LWTUNNEL_ENCAP_IP, top[1].U16());

        List<NetlinkAttribute> level1 = AttributeReader.ReadAll(top[0].Payload, "test");
        Assert.Equal(IPAddress.Parse("192.0.2.9"), level1[0].Address());
        Assert.True(level1[1].Nested);
        NetlinkAttribute ttl = Assert.Single(AttributeReader.ReadAll(level1[1].Payload, "test"));
        Assert.Equal(LWTUNNEL_IP_TTL, ttl.Type);
        Assert.Equal(7, ttl.U8());
    }

    [Fact]
    public void BeginNestedLegacy_does_not_set_NLA_F_NESTED()
    {
        byte[] buf = new byte[64];
        var w = new NetlinkWriter(buf);
        int info = w.BeginNestedLegacy(IFLA_LINKINFO);
        w.WriteString(IFLA_INFO_KIND, "ipip");
        w.EndNested(info);

        Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(buf));
        Assert.Equal(IFLA_LINKINFO, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(2)));
        NetlinkAttribute a = Assert.Single(AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test"));
        Assert.False(a.Nested);
        Assert.Equal("ipip", Assert.Single(AttributeReader.ReadAll(a.Payload, "test")).String());
    }

    [Fact]
    public void An_empty_nested_attribute_has_just_its_header()
    {
        byte[] buf = new byte[16];
        var w = new NetlinkWriter(buf);
        w.EndNested(w.BeginNested(IFLA_INFO_DATA));
        Assert.Equal(4, w.Length);
        NetlinkAttribute a = Assert.Single(AttributeReader.ReadAll(buf.AsMemory(0, 4), "test"));
        Assert.True(a.Nested);
        Assert.True(a.Payload.IsEmpty);
    }

    [Theory]
    [InlineData("", 5)]
    [InlineData("v0", 7)]
    [InlineData("eth0", 9)]
    [InlineData("abc", 8)]
    [InlineData("ma:test link", 17)]
    [InlineData("grüß", 11)] // UTF-8: 6 bytes + NUL
    public void Strings_are_NUL_terminated_and_padded(string value, int nlaLen)
    {
        byte[] buf = Dirty(64);
        var w = new NetlinkWriter(buf);
        w.WriteString(IFLA_IFNAME, value);

        Assert.Equal(Align.NlaAlign(nlaLen), w.Length);
        Assert.Equal(nlaLen, BinaryPrimitives.ReadUInt16LittleEndian(buf));
        Assert.Equal(0, buf[nlaLen - 1]);
        Assert.All(buf[nlaLen..w.Length], b => Assert.Equal(0, b));
        NetlinkAttribute a = Assert.Single(AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test"));
        Assert.Equal(value, a.String());
    }

    [Fact]
    public void String_getter_stops_at_the_first_NUL_and_accepts_a_missing_NUL()
    {
        Assert.Equal("ab", new NetlinkAttribute(1, false, "ab\0cd"u8.ToArray()).String());
        Assert.Equal("abc", new NetlinkAttribute(1, false, "abc"u8.ToArray()).String());
        Assert.Equal("", new NetlinkAttribute(1, false, ReadOnlyMemory<byte>.Empty).String());
    }

    [Fact]
    public void Integer_helpers_write_host_order_unless_named_BigEndian()
    {
        byte[] buf = new byte[128];
        var w = new NetlinkWriter(buf);
        w.WriteU8(1, 0xab);
        w.WriteU16(2, 0x1234);
        w.WriteU16BigEndian(3, 0x1234);
        w.WriteU32(4, 0x12345678);
        w.WriteU32BigEndian(5, 0x12345678);
        w.WriteI32(6, -2);
        w.WriteU64(7, 0x0102030405060708);
        w.WriteFlag(8);

        List<NetlinkAttribute> a = AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test");
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], a.Select(x => (int)x.Type));
        Assert.Equal(new byte[] { 0xab }, a[0].Payload.ToArray());
        Assert.Equal(new byte[] { 0x34, 0x12 }, a[1].Payload.ToArray());
        Assert.Equal(new byte[] { 0x12, 0x34 }, a[2].Payload.ToArray());
        Assert.Equal(new byte[] { 0x78, 0x56, 0x34, 0x12 }, a[3].Payload.ToArray());
        Assert.Equal(new byte[] { 0x12, 0x34, 0x56, 0x78 }, a[4].Payload.ToArray());
        Assert.Equal(new byte[] { 0xfe, 0xff, 0xff, 0xff }, a[5].Payload.ToArray());
        Assert.Equal(new byte[] { 8, 7, 6, 5, 4, 3, 2, 1 }, a[6].Payload.ToArray());
        Assert.True(a[7].Payload.IsEmpty);

        Assert.Equal(0xab, a[0].U8());
        Assert.Equal(0x1234, a[1].U16());
        Assert.Equal(0x1234, a[2].U16BigEndian());
        Assert.Equal(0x3412, a[2].U16());
        Assert.Equal(0x12345678u, a[3].U32());
        Assert.Equal(0x12345678u, a[4].U32BigEndian());
        Assert.Equal(-2, a[5].I32());
        Assert.Equal(0xfffffffeu, a[5].U32());
        Assert.Equal(0x0102030405060708ul, a[6].U64());
    }

    [Fact]
    public void Addresses_are_written_in_network_order()
    {
        byte[] buf = new byte[64];
        var w = new NetlinkWriter(buf);
        w.WriteAddress(RTA_DST, IPAddress.Parse("192.0.2.1"));
        w.WriteAddress(RTA_GATEWAY, IPAddress.Parse("2001:db8::1"));

        Assert.Equal(new byte[] { 8, 0, 1, 0, 192, 0, 2, 1 }, buf[..8]);
        Assert.Equal(20, BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(8)));
        Assert.Equal(new byte[] { 0x20, 0x01, 0x0d, 0xb8 }, buf[12..16]);
        List<NetlinkAttribute> a = AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test");
        Assert.Equal(IPAddress.Parse("192.0.2.1"), a[0].Address());
        Assert.Equal(IPAddress.Parse("2001:db8::1"), a[1].Address());
    }

    [Fact]
    public void Truncate_drops_what_was_written_after_a_point()
    {
        byte[] buf = new byte[64];
        var w = new NetlinkWriter(buf);
        w.WriteU32(1, 1);
        int d = w.BeginNestedLegacy(IFLA_INFO_DATA);
        Assert.Equal(12, w.Length);
        w.Truncate(d);
        Assert.Equal(8, w.Length);
        Assert.Equal(56, w.Remaining);
        Assert.Equal(8, w.Written.Length);
        w.WriteU32(2, 2);
        Assert.Equal([(ushort)1, (ushort)2], AttributeReader.ReadAll(buf.AsMemory(0, w.Length), "test").Select(a => a.Type));

        Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            var w2 = new NetlinkWriter(new byte[16]);
            w2.WriteU32(1, 1);
            w2.Truncate(9);
        });
        Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            var w2 = new NetlinkWriter(new byte[16]);
            w2.Truncate(-1);
        });
    }

    [Fact]
    public void Reserve_beyond_the_buffer_throws_InvalidOperationException_saying_how_much_is_missing()
    {
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(new byte[20]);
            w.BeginMessage(RTM_NEWLINK, 0);
            w.Reserve(SizeofIfinfomsg);
        });
        Assert.Contains("does not fit", e.Message, StringComparison.Ordinal);
        Assert.Contains("16 more bytes needed, 4 left in a 20-byte buffer", e.Message, StringComparison.Ordinal);

        // An attribute (header, payload or padding) that does not fit fails the same way.
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(new byte[7]);
            w.WriteU32(1, 1);
        });
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(new byte[6]);
            w.WriteU8(1, 1); // fits unpadded (5), not with its padding (8)
        });
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(new byte[16]);
            w.WriteString(1, "a string longer than the buffer");
        });
    }

    [Fact]
    public void A_full_buffer_is_usable_to_the_last_byte()
    {
        byte[] buf = new byte[24];
        var w = new NetlinkWriter(buf);
        int m = w.BeginMessage(RTM_NEWLINK, 0);
        w.WriteU32(IFLA_MTU, 1500);
        w.EndMessage(m);
        Assert.Equal(24, w.Length);
        Assert.Equal(0, w.Remaining);
        Assert.Single(MessageReader.ReadAll(buf));
    }

    [Fact]
    public void Address_round_trips_through_its_encoder_and_decoder()
    {
        var a = new AddressEntry
        {
            InterfaceIndex = 3,
            Local = IPAddress.Parse("10.0.0.1"),
            Peer = IPAddress.Parse("10.0.0.2"),
            PrefixLength = 32,
            Broadcast = IPAddress.Parse("10.0.0.255"),
            Scope = RT_SCOPE_LINK,
            Flags = IFA_F_NOPREFIXROUTE | IFA_F_PERMANENT,
            Label = "v1:peer",
            Protocol = 77,
        };
        AddressEntry b = AddressEntry.Decode(One((ref NetlinkWriter w) => a.Encode(ref w, RTM_NEWADDR, 0)));
        Assert.Equal(a, b with { Attributes = [] });
    }

    [Fact]
    public void Route_round_trips_with_nested_encap_and_legacy_nested_metrics()
    {
        var r = new RouteEntry
        {
            Destination = IPAddress.Parse("198.18.0.0"),
            DestinationPrefixLength = 16,
            Table = 1000,
            Protocol = 77,
            Scope = RT_SCOPE_UNIVERSE,
            Gateway = IPAddress.Parse("192.0.2.254"),
            OutputInterface = 3,
            PreferredSource = IPAddress.Parse("192.0.2.1"),
            Metric = 10,
            Mtu = 1400,
            EncapDestination = IPAddress.Parse("203.0.113.9"),
            EncapSource = IPAddress.Parse("203.0.113.1"),
            EncapTtl = 7,
        };
        NetlinkMessage m = One((ref NetlinkWriter w) => r.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));
        RouteEntry back = RouteEntry.Decode(m);
        Assert.Equal(r, back with { Attributes = [] });
        Assert.True(back.Attributes.Single(a => a.Type == RTA_ENCAP).Nested);
        Assert.False(back.Attributes.Single(a => a.Type == RTA_METRICS).Nested);
    }

    [Fact]
    public void Rule_round_trips()
    {
        var r = new RuleEntry
        {
            Source = IPAddress.Parse("192.0.2.0"),
            SourcePrefixLength = 24,
            Destination = IPAddress.Parse("198.51.100.7"),
            DestinationPrefixLength = 32,
            FwMark = 0x10,
            FwMask = 0xff,
            InputInterface = "v0",
            OutputInterface = "v1",
            Table = 1000,
            Priority = 1001,
            Protocol = 77,
            SuppressPrefixLength = 0,
            Invert = true,
        };
        Assert.Equal(r, RuleEntry.Decode(One((ref NetlinkWriter w) => r.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE))) with { Attributes = [] });
    }

    [Fact]
    public void Neighbour_round_trips()
    {
        var n = new NeighbourEntry
        {
            InterfaceIndex = 3,
            Destination = IPAddress.Parse("192.0.2.20"),
            LinkLayerAddress = PhysicalAddress.Parse("02-00-00-00-00-14"),
            State = NUD_PERMANENT,
            Flags = NTF_ROUTER,
            Protocol = 77,
        };
        NeighbourEntry back = NeighbourEntry.Decode(One((ref NetlinkWriter w) => n.Encode(ref w, RTM_NEWNEIGH, 0)));
        Assert.Equal(n.LinkLayerAddress, back.LinkLayerAddress);
        Assert.Equal(n with { LinkLayerAddress = null }, back with { LinkLayerAddress = null, Attributes = [] });

        var proxy = new NeighbourEntry { InterfaceIndex = 3, Destination = IPAddress.Parse("192.0.2.30"), Proxy = true, State = NUD_NONE };
        Assert.Equal(proxy, NeighbourEntry.Decode(One((ref NetlinkWriter w) => proxy.Encode(ref w, RTM_NEWNEIGH, 0))) with { Attributes = [] });
    }

    [Fact]
    public void Ipip_link_parameters_round_trip_through_IFLA_LINKINFO()
    {
        var p = new IpipParameters
        {
            Local = IPAddress.Parse("192.0.2.1"),
            Remote = IPAddress.Parse("198.51.100.1"),
            Ttl = 64,
            Tos = 1,
            PathMtuDiscovery = false,
            UnderlyingLinkIndex = 2,
            FwMark = 0x42,
            EncapType = 1,
            EncapSourcePort = 5555,
            EncapDestinationPort = 4444,
        };
        Link link = Link.Decode(One((ref NetlinkWriter w) =>
        {
            int m = w.BeginMessage(RTM_NEWLINK, 0);
            w.Reserve(SizeofIfinfomsg)[4] = 9;
            w.WriteString(IFLA_IFNAME, "ma-ipip0");
            w.WriteU32(IFLA_MTU, 1480);
            int info = w.BeginNestedLegacy(IFLA_LINKINFO);
            w.WriteString(IFLA_INFO_KIND, "ipip");
            int data = w.BeginNestedLegacy(IFLA_INFO_DATA);
            p.Encode(ref w);
            w.EndNested(data);
            w.EndNested(info);
            w.EndMessage(m);
        }));
        Assert.Equal(9, link.Index);
        Assert.Equal("ma-ipip0", link.Name);
        Assert.Equal(1480, link.Mtu);
        Assert.Equal("ipip", link.Kind);
        Assert.Equal(p, link.Ipip);
    }

    /// <summary>A buffer full of 0xAA, to show that what the writer does not set is zeroed.</summary>
    private static byte[] Dirty(int n) => Enumerable.Repeat((byte)0xAA, n).ToArray();

    private delegate void Build(ref NetlinkWriter w);

    /// <summary>Builds one message and reads it back through <see cref="MessageReader"/>.</summary>
    private static NetlinkMessage One(Build build)
    {
        byte[] buf = new byte[1024];
        var w = new NetlinkWriter(buf);
        build(ref w);
        return Assert.Single(MessageReader.ReadAll(buf.AsMemory(0, w.Length)));
    }
}
