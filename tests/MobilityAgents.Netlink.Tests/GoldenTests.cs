using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Reflection;
using System.Text;
using MobilityAgents.Netlink.Tests.Golden;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Netlink.Tests;

/// <summary>
/// Golden bytes from iproute2 6.1.0 and the Debian 6.1 kernel (Golden/Captured.*.cs, captured with
/// strace by tests/tools/capture-netlink-golden.py; never produced by our encoder).
/// <para>
/// Requests: marshal -> compare -> unmarshal. The request is built by the very static builder or
/// <c>Encode</c> method the operation uses, stamped by <see cref="NetlinkSocket.StampRequest"/>
/// (NLM_F_REQUEST | NLM_F_ACK, nlmsg_pid 0) with <b>the sequence number ip used in that capture</b>
/// (ip's nlmsg_seq is time(NULL), different in every capture), and compared byte for byte with what
/// ip sent, up to ip's nlmsg_len (ip sends its whole request buffer for a dump; the zeros beyond
/// nlmsg_len are checked to be zeros and dropped). Then the captured request is decoded with our
/// decoder and every field checked against the ip command line. Where we deliberately differ from
/// ip the comparison says exactly which bytes differ and why (<see cref="AssertGetRequest"/>).
/// </para>
/// <para>
/// Replies, errors and events: decoded with our decoders and every field checked against the
/// capture's command and the ifindexes in its doc comment; unknown attributes must be kept.
/// </para>
/// </summary>
public class GoldenTests
{
    // Attribute types our library has no constant for (it keeps them as unknown attributes);
    // C names from include/uapi/linux/if_link.h and neighbour.h.
    private const ushort IFLA_QDISC = 6;
    private const ushort IFLA_STATS = 7;
    private const ushort IFLA_MAP = 14;
    private const ushort IFLA_STATS64 = 23;
    private const ushort IFLA_AF_SPEC = 26;
    private const ushort IFLA_XDP = 43;
    private const ushort IFLA_PERM_ADDRESS = 54;
    private const ushort NDA_IFINDEX = 8;
    private const byte AF_PACKET = 17;
    private const byte FR_ACT_UNSPEC = 0;

    private static readonly IPAddress D0Address = IPAddress.Parse("192.0.2.1");

    // ------------------------------------------------------------------------------------------
    // Every capture
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Every_capture_splits_into_messages_that_our_decoders_accept()
    {
        List<(string Name, byte[] Bytes)> all = AllCaptures();
        Assert.Equal(115, all.Count); // Golden/README.md lists 115 captures
        foreach ((string name, byte[] bytes) in all)
        {
            List<NetlinkMessage> messages = Messages(bytes, name);
            Assert.NotEmpty(messages);
            foreach (NetlinkMessage m in messages)
            {
                object decoded = m.Type switch
                {
                    NLMSG_ERROR => NetlinkError.Decode(m),
                    NLMSG_DONE => NetlinkError.DecodeDone(m),
                    RTM_GETLINK => Link.Decode(m),
                    RTM_GETADDR => AttributeReader.ReadAll(m.Payload[SizeofIfaddrmsg..], name), // a dump filter: no address to decode
                    RTM_GETROUTE => RouteEntry.Decode(m),
                    RTM_GETRULE => RuleEntry.Decode(m),
                    RTM_GETNEIGH => NeighbourEntry.Decode(m),
                    _ => RouteMonitor.Decode(m) ?? throw new Xunit.Sdk.XunitException($"{name}: message type {m.Type} has no decoder"),
                };
                Assert.NotNull(decoded);
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // ip link
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Link_add_dummy_matches_ip_link_add_d1_type_dummy()
    {
        // IFLA_IFNAME "d1\0", IFLA_LINKINFO { IFLA_INFO_KIND "dummy" } (kind without NUL, no INFO_DATA).
        AssertExact(Captured.LinkAddDummyRequest, (ref NetlinkWriter w) => LinkService.AddRequest(ref w, "d1", "dummy", null, null, (ref NetlinkWriter _) => { }));

        Link request = Link.Decode(One(Captured.LinkAddDummyRequest));
        Assert.Equal(0, request.Index);
        Assert.Equal("d1", request.Name);
        Assert.Equal("dummy", request.Kind);
        Assert.Null(request.Ipip);
    }

    [Fact]
    public void Link_add_veth_matches_ip_link_add_va_type_veth_peer_name_vb()
    {
        AssertExact(Captured.LinkAddVethRequest, (ref NetlinkWriter w) => LinkService.AddRequest(ref w, "va", "veth", null, null, (ref NetlinkWriter d) => LinkService.VethPeer(ref d, "vb", -1)));

        Link request = Link.Decode(One(Captured.LinkAddVethRequest));
        Assert.Equal("va", request.Name);
        Assert.Equal("veth", request.Kind);
        // VETH_INFO_PEER (not marked nested, as ip sends it) carries the peer's ifinfomsg and name.
        NetlinkAttribute info = request.Attributes.Single(a => a.Type == IFLA_LINKINFO);
        Assert.False(info.Nested);
        NetlinkAttribute data = AttributeReader.ReadAll(info.Payload, "test").Single(a => a.Type == IFLA_INFO_DATA);
        NetlinkAttribute peer = Assert.Single(AttributeReader.ReadAll(data.Payload, "test"));
        Assert.Equal(VETH_INFO_PEER, peer.RawType);
        Assert.Equal("vb", AttributeReader.ReadAll(peer.Payload[SizeofIfinfomsg..], "test").Single(a => a.Type == IFLA_IFNAME).String());
    }

    [Fact]
    public void Link_add_ipip_classic_matches_ip_in_ip_order_with_ip_defaults()
    {
        // ip link add tunl1 type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 tos 0 pmtudisc dev d0 (d0 = ifindex 2).
        var tunl1 = new IpipParameters
        {
            Local = IPAddress.Parse("198.51.100.1"),
            Remote = IPAddress.Parse("198.51.100.2"),
            Ttl = 64,
            Tos = 0,
            PathMtuDiscovery = true,
            UnderlyingLinkIndex = 2,
        };
        // INFO_DATA as ip orders it: PROTO 0, LOCAL, REMOTE, PMTUDISC, TOS, TTL, LINK, FWMARK 0, ENCAP_TYPE/FLAGS/SPORT/DPORT 0.
        AssertExact(Captured.IpipAddTunl1Request, (ref NetlinkWriter w) => LinkService.AddRequest(ref w, "tunl1", "ipip", null, null, (ref NetlinkWriter d) => tunl1.Encode(ref d)));

        Link request = Link.Decode(One(Captured.IpipAddTunl1Request));
        Assert.Equal("tunl1", request.Name);
        Assert.Equal("ipip", request.Kind);
        Assert.Equal(tunl1, request.Ipip);
    }

    [Fact]
    public void Link_add_ipip_nopmtudisc_matches_ip()
    {
        // ip link add tunl2 type ipip local 198.51.100.1 remote 198.51.100.3 nopmtudisc (ttl inherit, no dev: LINK 0).
        var tunl2 = new IpipParameters
        {
            Local = IPAddress.Parse("198.51.100.1"),
            Remote = IPAddress.Parse("198.51.100.3"),
            PathMtuDiscovery = false,
        };
        tunl2.Validate("test"); // TTL 0 with nopmtudisc is the combination the kernel keeps
        AssertExact(Captured.IpipAddTunl2Request, (ref NetlinkWriter w) => LinkService.AddRequest(ref w, "tunl2", "ipip", null, null, (ref NetlinkWriter d) => tunl2.Encode(ref d)));

        Link request = Link.Decode(One(Captured.IpipAddTunl2Request));
        Assert.Equal("tunl2", request.Name);
        Assert.Equal(tunl2, request.Ipip);
    }

    [Fact]
    public void Link_add_ipip_external_matches_ip_link_add_ipip0_type_ipip_external()
    {
        // External: IFLA_IPTUN_PROTO 0 and the IFLA_IPTUN_COLLECT_METADATA flag, nothing else.
        var external = new IpipParameters { External = true };
        AssertExact(Captured.IpipAddExternalRequest, (ref NetlinkWriter w) => LinkService.AddRequest(ref w, "ipip0", "ipip", null, null, (ref NetlinkWriter d) => external.Encode(ref d)));

        Link request = Link.Decode(One(Captured.IpipAddExternalRequest));
        Assert.Equal("ipip0", request.Name);
        Assert.Equal(external, request.Ipip);
    }

    [Fact]
    public void Link_change_ipip_in_place_from_the_kernels_answer_matches_ip_link_set_type_ipip_remote()
    {
        // ip link set dev tunl1 type ipip remote 198.51.100.9: ip reads tunl1 (ifindex 3) and re-sends
        // every parameter with the new remote, addressing the link by ifi_index only. We do the same
        // (SetIpipRemote: Get, then ChangeIpip(index, link.Ipip with { Remote })), here from the very
        // reply ip got.
        Link before = Link.Decode(One(Captured.IpipSetRemoteLookup2Reply));
        Assert.Equal(before with { Attributes = [] }, Link.Decode(One(Captured.IpipSetRemoteLookup1Reply)) with { Attributes = [] });
        Assert.Equal(3, before.Index);
        Assert.Equal(
            new IpipParameters
            {
                Local = IPAddress.Parse("198.51.100.1"),
                Remote = IPAddress.Parse("198.51.100.2"),
                Ttl = 64,
                Tos = 0,
                PathMtuDiscovery = true,
                UnderlyingLinkIndex = 2,
            },
            before.Ipip);

        IpipParameters changed = before.Ipip! with { Remote = IPAddress.Parse("198.51.100.9") };
        AssertExact(Captured.IpipSetRemoteRequest, (ref NetlinkWriter w) => LinkService.ChangeIpipRequest(ref w, before.Index, changed));

        Link request = Link.Decode(One(Captured.IpipSetRemoteRequest));
        Assert.Equal(3, request.Index);
        Assert.Equal("", request.Name); // no IFLA_IFNAME
        Assert.Equal(changed, request.Ipip);
    }

    [Fact]
    public void Link_set_up_and_down_match_ip()
    {
        // ip link set dev d0 up / down (d0 = ifindex 2): ifi_flags IFF_UP or 0 under ifi_change IFF_UP.
        AssertExact(Captured.LinkSetUpRequest, (ref NetlinkWriter w) => LinkService.SetFlagsRequest(ref w, 2, IFF_UP, IFF_UP));
        AssertExact(Captured.LinkSetDownRequest, (ref NetlinkWriter w) => LinkService.SetFlagsRequest(ref w, 2, 0, IFF_UP));

        Link up = Link.Decode(One(Captured.LinkSetUpRequest));
        Assert.Equal(2, up.Index);
        Assert.True(up.IsUp);
        Assert.Empty(up.Attributes);
        Link down = Link.Decode(One(Captured.LinkSetDownRequest));
        Assert.Equal(2, down.Index);
        Assert.False(down.IsUp);
        Assert.Equal(IFF_UP, BinaryPrimitives.ReadUInt32LittleEndian(One(Captured.LinkSetDownRequest).Payload.Span[12..])); // ifi_change
    }

    [Fact]
    public void Link_set_mtu_matches_ip_link_set_dev_d0_mtu_1400()
    {
        AssertExact(Captured.LinkSetMtuRequest, (ref NetlinkWriter w) => LinkService.SetMtuRequest(ref w, 2, 1400));

        Link request = Link.Decode(One(Captured.LinkSetMtuRequest));
        Assert.Equal(2, request.Index);
        Assert.Equal(1400, request.Mtu);
    }

    [Fact]
    public void Link_delete_by_index_matches_ip_link_del_and_by_name_differs_only_in_addressing()
    {
        // ip link del dev d1: ip resolves d1 (ifindex 3) first and sends ifi_index 3, no attribute.
        AssertExact(Captured.LinkDelRequest, (ref NetlinkWriter w) => LinkService.DeleteRequest(ref w, 3, null));

        // Delete(name) saves that lookup: ifi_index 0 and IFLA_IFNAME "d1", which rtnl_dellink accepts
        // as well. Everything else is ip's: header type and flags, the rest of the ifinfomsg.
        byte[] ip = IpRequest(Captured.LinkDelRequest);
        byte[] byName = Ours((ref NetlinkWriter w) => LinkService.DeleteRequest(ref w, 0, "d1"), Seq(ip));
        Assert.Equal(ip.Length + 8, byName.Length); // + IFLA_IFNAME: 4 header, "d1\0", 1 padding
        Assert.Equal((uint)byName.Length, BinaryPrimitives.ReadUInt32LittleEndian(byName));
        AssertBytes(ip.AsSpan(4, 16), byName.AsSpan(4, 16), "nlmsghdr after nlmsg_len, ifi_family .. ifi_type");
        AssertBytes(ip.AsSpan(24, 8), byName.AsSpan(24, 8), "ifi_flags, ifi_change");
        Link ours = Link.Decode(One(byName));
        Assert.Equal(0, ours.Index);
        Assert.Equal("d1", ours.Name);
        Assert.Equal(3, Link.Decode(One(Captured.LinkDelRequest)).Index);
    }

    [Fact]
    public void Link_get_by_name_matches_ips_own_name_lookup()
    {
        // Every `ip ... dev NAME` first resolves NAME with ll_link_get: RTM_GETLINK, ifinfomsg 0,
        // IFLA_EXT_MASK RTEXT_FILTER_VF|RTEXT_FILTER_SKIP_STATS, IFLA_IFNAME. Get(name) sends exactly
        // that, with NLM_F_ACK added (see AssertGetRequest).
        AssertGetRequest(Captured.LinkShowLoLookup1, (ref NetlinkWriter w) => LinkService.GetRequest(ref w, 0, "lo"));
        AssertGetRequest(Captured.LinkSetUpLookup1, (ref NetlinkWriter w) => LinkService.GetRequest(ref w, 0, "d0"));
        AssertGetRequest(Captured.IpipSetRemoteLookup1, (ref NetlinkWriter w) => LinkService.GetRequest(ref w, 0, "tunl1"));

        // `ip link show dev lo`'s own request is a different one (family AF_PACKET, statistics wanted):
        // that is the listing, not the lookup, and Get deliberately skips the statistics.
        Assert.Equal(AF_PACKET, IpRequest(Captured.LinkShowLoRequest)[16]);

        Link request = Link.Decode(One(Captured.LinkShowLoLookup1));
        Assert.Equal(0, request.Index);
        Assert.Equal("lo", request.Name);
        Assert.Equal(RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS, request.Attributes.Single(a => a.Type == IFLA_EXT_MASK).U32());
    }

    [Fact]
    public void Link_get_by_index_matches_ips_index_lookup()
    {
        // `ip -d link show dev tunl1` names tunl1's underlay (IFLA_LINK 2) with ll_index_to_name:
        // RTM_GETLINK ifi_index 2, IFLA_EXT_MASK VF|SKIP_STATS. Get(2) sends exactly that (+ NLM_F_ACK).
        AssertGetRequest(Captured.IpipShowTunl1After1, (ref NetlinkWriter w) => LinkService.GetRequest(ref w, 2, null));

        Assert.Equal(2, Link.Decode(One(Captured.IpipShowTunl1After1)).Index);
    }

    [Fact]
    public void Link_reply_of_lo_decodes_and_keeps_unknown_attributes()
    {
        Link lo = Link.Decode(One(Captured.LinkShowLoReply));
        Assert.Equal(
            new Link
            {
                Index = 1,
                Name = "lo",
                Flags = IFF_LOOPBACK,
                DeviceType = 772, // ARPHRD_LOOPBACK
                Mtu = 65536,
                OperState = 2, // IF_OPER_DOWN: never set up in the fresh namespace
                Kind = null, // no IFLA_LINKINFO
                HardwareAddress = new PhysicalAddress(new byte[6]),
                ParentIndex = null,
                MasterIndex = null,
                Alias = null,
                Ipip = null,
            },
            lo with { Attributes = [] });
        Assert.False(lo.IsUp);
        Assert.Equal(200, lo.Attributes.Single(a => a.Type == IFLA_STATS64).Payload.Length); // struct rtnl_link_stats64: 25 u64
        Assert.Equal(800, lo.Attributes.Single(a => a.Type == IFLA_AF_SPEC).Payload.Length);
    }

    [Fact]
    public void Link_reply_of_a_dummy_decodes_and_keeps_every_attribute_in_wire_order()
    {
        Link d0 = Link.Decode(One(Captured.LinkShowDummyReply));
        Assert.Equal(
            new Link
            {
                Index = 2,
                Name = "d0",
                Flags = IFF_BROADCAST | IFF_NOARP,
                DeviceType = 1, // ARPHRD_ETHER
                Mtu = 1400, // set by the earlier `ip link set dev d0 mtu 1400`
                OperState = 2,
                Kind = "dummy",
                HardwareAddress = Mac("42:a5:c0:9e:55:60"),
            },
            d0 with { Attributes = [] });
        Assert.Equal(
            [
                IFLA_IFNAME, IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKMODE, IFLA_MTU, IFLA_MIN_MTU, IFLA_MAX_MTU,
                IFLA_GROUP, 30 /* IFLA_PROMISCUITY */, 61 /* IFLA_ALLMULTI */, 31 /* IFLA_NUM_TX_QUEUES */,
                40 /* IFLA_GSO_MAX_SEGS */, 41 /* IFLA_GSO_MAX_SIZE */, 58 /* IFLA_GRO_MAX_SIZE */,
                59 /* IFLA_TSO_MAX_SIZE */, 60 /* IFLA_TSO_MAX_SEGS */, 32 /* IFLA_NUM_RX_QUEUES */,
                33 /* IFLA_CARRIER */, IFLA_QDISC, 35 /* IFLA_CARRIER_CHANGES */, 47 /* IFLA_CARRIER_UP_COUNT */,
                48 /* IFLA_CARRIER_DOWN_COUNT */, 39 /* IFLA_PROTO_DOWN */, IFLA_MAP, IFLA_ADDRESS, IFLA_BROADCAST,
                IFLA_STATS64, IFLA_STATS, IFLA_XDP, IFLA_LINKINFO, IFLA_AF_SPEC,
            ],
            d0.Attributes.Select(a => a.Type));
        // An unknown attribute's payload is kept as received: rtnl_link_stats64 tx_packets 1, tx_bytes 70.
        ReadOnlySpan<byte> stats = d0.Attributes.Single(a => a.Type == IFLA_STATS64).Payload.Span;
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(stats[8..]));
        Assert.Equal(70UL, BinaryPrimitives.ReadUInt64LittleEndian(stats[24..]));
        Assert.Equal("noqueue", d0.Attributes.Single(a => a.Type == IFLA_QDISC).String());
    }

    [Fact]
    public void Link_reply_of_tunl1_decodes_its_ipip_parameters()
    {
        // ip -d link show dev tunl1, after `ip link set dev tunl1 type ipip remote 198.51.100.9`.
        Link tunl1 = Link.Decode(One(Captured.IpipShowTunl1Reply));
        Assert.Equal(
            new Link
            {
                Index = 3,
                Name = "tunl1",
                Flags = IFF_POINTOPOINT | IFF_NOARP,
                DeviceType = 768, // ARPHRD_TUNNEL
                Mtu = 1480,
                OperState = 2,
                Kind = "ipip",
                HardwareAddress = new PhysicalAddress([198, 51, 100, 1]), // a tunnel's 4-byte "hardware" address: its local IPv4
                ParentIndex = 2, // IFLA_LINK: d0
                Ipip = new IpipParameters
                {
                    Local = IPAddress.Parse("198.51.100.1"),
                    Remote = IPAddress.Parse("198.51.100.9"),
                    Ttl = 64,
                    Tos = 0,
                    PathMtuDiscovery = true,
                    UnderlyingLinkIndex = 2,
                    External = false,
                    FwMark = null,
                    EncapType = null,
                    EncapSourcePort = null,
                    EncapDestinationPort = null,
                },
            },
            tunl1 with { Attributes = [] });
        Assert.Contains(tunl1.Attributes, a => a.Type == IFLA_STATS64);
        Assert.Equal([198, 51, 100, 1], tunl1.Attributes.Single(a => a.Type == IFLA_PERM_ADDRESS).Payload.ToArray());
        Assert.Equal([198, 51, 100, 9], tunl1.Attributes.Single(a => a.Type == IFLA_BROADCAST).Payload.ToArray());
    }

    [Fact]
    public void Link_reply_of_an_external_ipip_decodes_as_external()
    {
        Link ipip0 = Link.Decode(One(Captured.IpipShowExternalReply));
        Assert.Equal(
            new Link
            {
                Index = 5,
                Name = "ipip0",
                Flags = IFF_NOARP,
                DeviceType = 768,
                Mtu = 1480,
                OperState = 2,
                Kind = "ipip",
                HardwareAddress = new PhysicalAddress(new byte[4]),
                ParentIndex = null, // IFLA_LINK 0: none
                Ipip = new IpipParameters { External = true, PathMtuDiscovery = true },
            },
            ipip0 with { Attributes = [] });
        Assert.Equal(0u, ipip0.Attributes.Single(a => a.Type == IFLA_LINK).U32());
    }

    // ------------------------------------------------------------------------------------------
    // ip addr
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Address_add_matches_ip_addr_add_192_0_2_1_24_dev_d0()
    {
        var address = new AddressEntry { InterfaceIndex = 2, Local = D0Address, PrefixLength = 24 };
        AssertExact(Captured.AddrAddRequest, (ref NetlinkWriter w) => address.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(address, AddressEntry.Decode(One(Captured.AddrAddRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Address_add_peer_matches_ip_addr_add_10_0_0_1_peer_10_0_0_2()
    {
        var address = new AddressEntry { InterfaceIndex = 2, Local = IPAddress.Parse("10.0.0.1"), Peer = IPAddress.Parse("10.0.0.2"), PrefixLength = 32 };
        AssertExact(Captured.AddrAddPeerRequest, (ref NetlinkWriter w) => address.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(address, AddressEntry.Decode(One(Captured.AddrAddPeerRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Address_replace_matches_ip_addr_replace()
    {
        var address = new AddressEntry { InterfaceIndex = 2, Local = D0Address, PrefixLength = 24 };
        AssertExact(Captured.AddrReplaceRequest, (ref NetlinkWriter w) => address.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE));

        Assert.Equal(address, AddressEntry.Decode(One(Captured.AddrReplaceRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Address_delete_matches_ip_addr_del()
    {
        var address = new AddressEntry { InterfaceIndex = 2, Local = D0Address, PrefixLength = 24 };
        AssertExact(Captured.AddrDelRequest, (ref NetlinkWriter w) => address.Encode(ref w, RTM_DELADDR, 0));
        var missing = new AddressEntry { InterfaceIndex = 2, Local = IPAddress.Parse("198.51.100.200"), PrefixLength = 24 };
        AssertExact(Captured.ErrorAddrDelMissingRequest, (ref NetlinkWriter w) => missing.Encode(ref w, RTM_DELADDR, 0));

        Assert.Equal(address, AddressEntry.Decode(One(Captured.AddrDelRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Address_dump_matches_ip_4_addr_show_dev_d0()
    {
        AssertGetRequest(Captured.AddrShowRequest, (ref NetlinkWriter w) => AddressService.ListRequest(ref w, 2));
    }

    [Fact]
    public void Address_dump_reply_decodes_both_addresses_and_the_done()
    {
        List<NetlinkMessage> messages = Messages(Captured.AddrShowReply1);
        Assert.Equal(2, messages.Count);
        Assert.All(messages, m => Assert.Equal(NLM_F_MULTI | NLM_F_DUMP_FILTERED, m.Header.Flags));

        AddressEntry a = AddressEntry.Decode(messages[0]);
        Assert.Equal(
            new AddressEntry
            {
                InterfaceIndex = 2,
                Local = D0Address,
                PrefixLength = 24,
                Peer = null,
                Broadcast = null,
                Scope = RT_SCOPE_UNIVERSE,
                Flags = IFA_F_PERMANENT,
                Label = "d0",
                Protocol = null,
            },
            a with { Attributes = [] });
        Assert.Equal([IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS, IFA_CACHEINFO], a.Attributes.Select(x => x.Type));
        Assert.Equal(16, a.Attributes.Single(x => x.Type == IFA_CACHEINFO).Payload.Length); // struct ifa_cacheinfo, kept unknown

        AddressEntry p = AddressEntry.Decode(messages[1]);
        Assert.Equal(
            new AddressEntry
            {
                InterfaceIndex = 2,
                Local = IPAddress.Parse("10.0.0.1"),
                PrefixLength = 32,
                Peer = IPAddress.Parse("10.0.0.2"),
                Scope = RT_SCOPE_UNIVERSE,
                Flags = IFA_F_PERMANENT,
                Label = "d0",
            },
            p with { Attributes = [] });
        Assert.Equal("10.0.0.1 peer 10.0.0.2/32", p.ToIpArguments());

        AssertDone(Captured.AddrShowReply2, NLM_F_MULTI | NLM_F_DUMP_FILTERED);
    }

    // ------------------------------------------------------------------------------------------
    // ip route
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Route_add_host_matches_ip_route_add_192_0_2_10_32_dev_d0_table_100_proto_99()
    {
        var route = new RouteEntry { Destination = IPAddress.Parse("192.0.2.10"), DestinationPrefixLength = 32, OutputInterface = 2, Table = 100, Protocol = 99 };
        AssertExact(Captured.RouteAddHostRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        // Without a gateway the scope is link, as ip chooses it.
        Assert.Equal(route with { Scope = RT_SCOPE_LINK }, RouteEntry.Decode(One(Captured.RouteAddHostRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Route_add_via_src_metric_mtu_matches_ip_with_metrics_after_oif()
    {
        // ip route add 203.0.113.0/24 via 192.0.2.254 dev d0 src 192.0.2.1 table 100 proto 99 metric 50 mtu 1400:
        // RTA_DST, RTA_GATEWAY, RTA_PREFSRC, RTA_PRIORITY, RTA_OIF, RTA_METRICS { RTAX_MTU } (not marked nested).
        var route = new RouteEntry
        {
            Destination = IPAddress.Parse("203.0.113.0"),
            DestinationPrefixLength = 24,
            Gateway = IPAddress.Parse("192.0.2.254"),
            OutputInterface = 2,
            PreferredSource = D0Address,
            Table = 100,
            Protocol = 99,
            Metric = 50,
            Mtu = 1400,
        };
        AssertExact(Captured.RouteAddViaRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        RouteEntry request = RouteEntry.Decode(One(Captured.RouteAddViaRequest));
        Assert.Equal(route with { Scope = RT_SCOPE_UNIVERSE }, request with { Attributes = [] });
        Assert.False(request.Attributes.Single(a => a.Type == RTA_METRICS).Nested);
    }

    [Fact]
    public void Route_add_scope_link_matches_ip()
    {
        var route = new RouteEntry { Destination = IPAddress.Parse("192.0.2.11"), DestinationPrefixLength = 32, OutputInterface = 2, Scope = RT_SCOPE_LINK, Table = 100, Protocol = 99 };
        AssertExact(Captured.RouteAddScopeLinkRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(route, RouteEntry.Decode(One(Captured.RouteAddScopeLinkRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Route_replace_matches_ip_route_replace()
    {
        var route = new RouteEntry { Destination = IPAddress.Parse("192.0.2.10"), DestinationPrefixLength = 32, OutputInterface = 2, Table = 100, Protocol = 99 };
        AssertExact(Captured.RouteReplaceRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE));

        Assert.Equal(route with { Scope = RT_SCOPE_LINK }, RouteEntry.Decode(One(Captured.RouteReplaceRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Route_delete_matches_ip_route_del()
    {
        // ip route del 192.0.2.10/32 dev d0 table 100: no proto and no type on the command line, so
        // rtm_protocol 0 and rtm_type 0 (the kernel's "any"); scope "nowhere" (any) as ip sends for a delete.
        var route = new RouteEntry
        {
            Destination = IPAddress.Parse("192.0.2.10"),
            DestinationPrefixLength = 32,
            OutputInterface = 2,
            Table = 100,
            Protocol = RTPROT_UNSPEC,
            Type = RTN_UNSPEC,
        };
        AssertExact(Captured.RouteDelRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_DELROUTE, 0));

        Assert.Equal(route with { Scope = RT_SCOPE_NOWHERE }, RouteEntry.Decode(One(Captured.RouteDelRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Route_add_default_matches_ip_route_add_default_dev_d0_table_200()
    {
        // Default route: no RTA_DST; protocol boot (ip's default) and scope link (no gateway).
        var route = new RouteEntry { Destination = IPAddress.Any, DestinationPrefixLength = 0, OutputInterface = 2, Table = 200 };
        AssertExact(Captured.RouteAddDefaultRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        RouteEntry request = RouteEntry.Decode(One(Captured.RouteAddDefaultRequest));
        Assert.Equal(route with { Scope = RT_SCOPE_LINK, Protocol = RTPROT_BOOT }, request with { Attributes = [] });
        Assert.DoesNotContain(request.Attributes, a => a.Type == RTA_DST);
    }

    [Fact]
    public void Route_add_encap_ip_matches_ip_with_RTA_ENCAP_nested()
    {
        // ip route add 192.0.2.20/32 encap ip dst 198.51.100.2 dev ipip0 table 100 proto 99 (ipip0 = ifindex 3):
        // RTA_DST, RTA_ENCAP | NLA_F_NESTED { LWTUNNEL_IP_DST }, RTA_ENCAP_TYPE LWTUNNEL_ENCAP_IP, RTA_OIF.
        var route = new RouteEntry
        {
            Destination = IPAddress.Parse("192.0.2.20"),
            DestinationPrefixLength = 32,
            EncapDestination = IPAddress.Parse("198.51.100.2"),
            OutputInterface = 3,
            Table = 100,
            Protocol = 99,
        };
        AssertExact(Captured.RouteAddEncapIpRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        RouteEntry request = RouteEntry.Decode(One(Captured.RouteAddEncapIpRequest));
        Assert.Equal(route with { Scope = RT_SCOPE_LINK }, request with { Attributes = [] });
        Assert.True(request.Attributes.Single(a => a.Type == RTA_ENCAP).Nested); // ip marks it NLA_F_NESTED
        Assert.Equal(LWTUNNEL_ENCAP_IP, request.Attributes.Single(a => a.Type == RTA_ENCAP_TYPE).U16());
    }

    [Fact]
    public void Route_dump_matches_ip_route_show_table_100()
    {
        AssertGetRequest(Captured.RouteShowTableRequest, (ref NetlinkWriter w) => RouteService.ListRequest(ref w, 100));
        AssertGetRequest(Captured.RouteShowTableEncapRequest, (ref NetlinkWriter w) => RouteService.ListRequest(ref w, 100));
    }

    [Fact]
    public void Route_dump_reply_decodes_the_three_routes_of_table_100()
    {
        List<NetlinkMessage> messages = Messages(Captured.RouteShowTableReply1);
        Assert.Equal(3, messages.Count);
        RouteEntry[] routes = messages.Select(RouteEntry.Decode).ToArray();

        Assert.Equal(
            new RouteEntry
            {
                Destination = IPAddress.Parse("192.0.2.10"),
                DestinationPrefixLength = 32,
                Tos = 0,
                Table = 100,
                Protocol = 99,
                Scope = RT_SCOPE_LINK,
                Type = RTN_UNICAST,
                OutputInterface = 2,
            },
            routes[0] with { Attributes = [] });
        Assert.Equal(
            new RouteEntry
            {
                Destination = IPAddress.Parse("192.0.2.11"),
                DestinationPrefixLength = 32,
                Table = 100,
                Protocol = 99,
                Scope = RT_SCOPE_LINK,
                Type = RTN_UNICAST,
                OutputInterface = 2,
            },
            routes[1] with { Attributes = [] });
        Assert.Equal(
            new RouteEntry
            {
                Destination = IPAddress.Parse("203.0.113.0"),
                DestinationPrefixLength = 24,
                Table = 100,
                Protocol = 99,
                Scope = RT_SCOPE_UNIVERSE,
                Type = RTN_UNICAST,
                OutputInterface = 2,
                Gateway = IPAddress.Parse("192.0.2.254"),
                PreferredSource = D0Address,
                Metric = 50,
                Mtu = 1400,
            },
            routes[2] with { Attributes = [] });
        // The kernel's order, RTA_TABLE included, kept as received.
        Assert.Equal([RTA_TABLE, RTA_DST, RTA_PRIORITY, RTA_METRICS, RTA_PREFSRC, RTA_GATEWAY, RTA_OIF], routes[2].Attributes.Select(a => a.Type));

        AssertDone(Captured.RouteShowTableReply2, NLM_F_MULTI | NLM_F_DUMP_FILTERED);
    }

    [Fact]
    public void Route_dump_reply_decodes_the_encap_route()
    {
        RouteEntry route = RouteEntry.Decode(One(Captured.RouteShowTableEncapReply1));
        Assert.Equal(
            new RouteEntry
            {
                Destination = IPAddress.Parse("192.0.2.20"),
                DestinationPrefixLength = 32,
                Table = 100,
                Protocol = 99,
                Scope = RT_SCOPE_LINK,
                Type = RTN_UNICAST,
                OutputInterface = 3,
                EncapDestination = IPAddress.Parse("198.51.100.2"),
                EncapSource = null, // LWTUNNEL_IP_SRC 0.0.0.0
                EncapTtl = null, // LWTUNNEL_IP_TTL 0
            },
            route with { Attributes = [] });
        // Unlike ip's request, the kernel's dump does not mark RTA_ENCAP NLA_F_NESTED; it is decoded all the same.
        NetlinkAttribute encap = route.Attributes.Single(a => a.Type == RTA_ENCAP);
        Assert.False(encap.Nested);
        Assert.Equal(
            [LWTUNNEL_IP_ID, LWTUNNEL_IP_DST, LWTUNNEL_IP_SRC, LWTUNNEL_IP_TOS, LWTUNNEL_IP_TTL, LWTUNNEL_IP_FLAGS],
            AttributeReader.ReadAll(encap.Payload, "test").Select(a => a.Type));
        Assert.Equal(LWTUNNEL_ENCAP_IP, route.Attributes.Single(a => a.Type == RTA_ENCAP_TYPE).U16());

        AssertDone(Captured.RouteShowTableEncapReply2, NLM_F_MULTI | NLM_F_DUMP_FILTERED);
    }

    // ------------------------------------------------------------------------------------------
    // ip rule
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Rule_add_from_matches_ip_rule_add_from_192_0_2_10_table_200_priority_1000_protocol_99()
    {
        // Table 200 < 256 travels in fib_rule_hdr.table only, as ip sends it (no FRA_TABLE).
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 200, Priority = 1000, Protocol = 99 };
        AssertExact(Captured.RuleAddFromRequest, (ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(rule, RuleEntry.Decode(One(Captured.RuleAddFromRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Rule_add_fwmark_mask_matches_ip_rule_add_fwmark_0x1_0xff()
    {
        var rule = new RuleEntry { FwMark = 0x1, FwMask = 0xff, Table = 200, Priority = 1001 };
        AssertExact(Captured.RuleAddFwmarkRequest, (ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(rule, RuleEntry.Decode(One(Captured.RuleAddFwmarkRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Rule_add_to_iif_matches_ip_rule_add_to_203_0_113_0_24_iif_lo()
    {
        var rule = new RuleEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, InputInterface = "lo", Table = 200, Priority = 1002 };
        AssertExact(Captured.RuleAddToIifRequest, (ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(rule, RuleEntry.Decode(One(Captured.RuleAddToIifRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Rule_add_from_oif_matches_ip_rule_add_from_192_0_2_0_24_oif_d0()
    {
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.0"), SourcePrefixLength = 24, OutputInterface = "d0", Table = 200, Priority = 1003 };
        AssertExact(Captured.RuleAddFromOifRequest, (ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(rule, RuleEntry.Decode(One(Captured.RuleAddFromOifRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Rule_add_without_protocol_matches_ip_rule_add_that_the_kernel_refused_as_duplicate()
    {
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 200, Priority = 1000 };
        AssertExact(Captured.ErrorRuleExistsRequest, (ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL));
    }

    [Fact]
    public void Rule_delete_matches_ip_rule_del()
    {
        // ip rule del from 192.0.2.10 table 200 priority 1000: no action on the command line, so
        // FR_ACT_UNSPEC (the kernel's rule_find treats 0 as "any action").
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 200, Priority = 1000, Action = FR_ACT_UNSPEC };
        AssertExact(Captured.RuleDelRequest, (ref NetlinkWriter w) => rule.Encode(ref w, RTM_DELRULE, 0));

        Assert.Equal(rule, RuleEntry.Decode(One(Captured.RuleDelRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Rule_dump_matches_ip_rule_show()
    {
        AssertGetRequest(Captured.RuleShowRequest, (ref NetlinkWriter w) => RuleService.ListRequest(ref w, AF_INET));
    }

    [Fact]
    public void Rule_dump_reply_decodes_the_default_rules_and_the_four_added()
    {
        List<NetlinkMessage> messages = Messages(Captured.RuleShowReply1);
        Assert.Equal(7, messages.Count);
        Assert.All(messages, m => Assert.Equal(NLM_F_MULTI, m.Header.Flags));
        RuleEntry[] rules = messages.Select(RuleEntry.Decode).ToArray();
        RuleEntry[] expected =
        [
            // 0: from all lookup local (priority 0: no FRA_PRIORITY), installed by the kernel.
            new RuleEntry { Table = RT_TABLE_LOCAL, Priority = 0, Protocol = RTPROT_KERNEL },
            // 1000: from 192.0.2.10 lookup 200 proto 99.
            new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 200, Priority = 1000, Protocol = 99 },
            // 1001: from all fwmark 0x1/0xff lookup 200.
            new RuleEntry { FwMark = 0x1, FwMask = 0xff, Table = 200, Priority = 1001, Protocol = RTPROT_UNSPEC },
            // 1002: from all to 203.0.113.0/24 iif lo lookup 200.
            new RuleEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, InputInterface = "lo", Table = 200, Priority = 1002, Protocol = RTPROT_UNSPEC },
            // 1003: from 192.0.2.0/24 oif d0 lookup 200.
            new RuleEntry { Source = IPAddress.Parse("192.0.2.0"), SourcePrefixLength = 24, OutputInterface = "d0", Table = 200, Priority = 1003, Protocol = RTPROT_UNSPEC },
            // 32766: from all lookup main; 32767: from all lookup default.
            new RuleEntry { Table = RT_TABLE_MAIN, Priority = 32766, Protocol = RTPROT_KERNEL },
            new RuleEntry { Table = RT_TABLE_DEFAULT, Priority = 32767, Protocol = RTPROT_KERNEL },
        ];
        for (int i = 0; i < expected.Length; i++)
        {
            // Family AF_INET, action FR_ACT_TO_TBL, tos 0, not inverted; FRA_SUPPRESS_PREFIXLEN 0xffffffff (none) decodes to null.
            Assert.Equal(expected[i], rules[i] with { Attributes = [] });
            Assert.Equal(uint.MaxValue, rules[i].Attributes.Single(a => a.Type == FRA_SUPPRESS_PREFIXLEN).U32());
        }

        AssertDone(Captured.RuleShowReply2, NLM_F_MULTI);
    }

    // ------------------------------------------------------------------------------------------
    // ip neigh
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Neighbour_add_proxy_matches_ip_neigh_add_proxy_192_0_2_10_dev_d0()
    {
        var proxy = new NeighbourEntry { InterfaceIndex = 2, Destination = IPAddress.Parse("192.0.2.10"), Proxy = true };
        AssertExact(Captured.NeighAddProxyRequest, (ref NetlinkWriter w) => proxy.Encode(ref w, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(proxy, NeighbourEntry.Decode(One(Captured.NeighAddProxyRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Neighbour_delete_proxy_matches_ip_neigh_del_proxy()
    {
        var proxy = new NeighbourEntry { InterfaceIndex = 2, Destination = IPAddress.Parse("192.0.2.10"), Proxy = true };
        AssertExact(Captured.NeighDelProxyRequest, (ref NetlinkWriter w) => proxy.Encode(ref w, RTM_DELNEIGH, 0));

        Assert.Equal(proxy, NeighbourEntry.Decode(One(Captured.NeighDelProxyRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Neighbour_add_permanent_with_lladdr_matches_ip_neigh_add()
    {
        var neighbour = new NeighbourEntry
        {
            InterfaceIndex = 2,
            Destination = IPAddress.Parse("192.0.2.5"),
            LinkLayerAddress = Mac("02:00:00:00:00:01"),
            State = NUD_PERMANENT,
        };
        AssertExact(Captured.NeighAddPermanentRequest, (ref NetlinkWriter w) => neighbour.Encode(ref w, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL));

        Assert.Equal(neighbour, NeighbourEntry.Decode(One(Captured.NeighAddPermanentRequest)) with { Attributes = [] });
    }

    [Fact]
    public void Neighbour_dump_proxy_differs_from_ip_only_in_the_family()
    {
        // ip neigh show proxy asks for AF_UNSPEC (every family); we ask for AF_INET because we
        // manage IPv4 proxy-ARP entries only and want the kernel to filter (neigh_dump_info skips
        // the other tables). Everything else, NTF_PROXY included, is ip's.
        AssertGetRequest(
            Captured.NeighShowProxyRequest,
            (ref NetlinkWriter w) => NeighbourService.ListRequest(ref w, proxy: true),
            expected =>
            {
                Assert.Equal(AF_UNSPEC, expected[16]); // ndm_family as ip sent it
                expected[16] = AF_INET;
            });
    }

    [Fact]
    public void Neighbour_dump_replies_decode()
    {
        NeighbourEntry proxy = NeighbourEntry.Decode(One(Captured.NeighShowProxyReply1));
        Assert.Equal(
            new NeighbourEntry { InterfaceIndex = 2, Destination = IPAddress.Parse("192.0.2.10"), Proxy = true, State = NUD_NONE, Flags = 0, LinkLayerAddress = null, Protocol = null },
            proxy with { Attributes = [] });
        AssertDone(Captured.NeighShowProxyReply2, NLM_F_MULTI);

        // ip neigh show dev d0 (a request we do not send: it filters with NDA_IFINDEX).
        Assert.Equal(2u, NeighbourEntry.Decode(One(Captured.NeighShowDevRequest)).Attributes.Single(a => a.Type == NDA_IFINDEX).U32());
        List<NetlinkMessage> messages = Messages(Captured.NeighShowDevReply1);
        Assert.Equal(2, messages.Count);
        NeighbourEntry permanent = NeighbourEntry.Decode(messages[0]);
        Assert.Equal(
            new NeighbourEntry { InterfaceIndex = 2, Destination = IPAddress.Parse("192.0.2.5"), LinkLayerAddress = Mac("02:00:00:00:00:01"), State = NUD_PERMANENT, Proxy = false, Flags = 0 },
            permanent with { Attributes = [] });
        Assert.Equal([NDA_DST, NDA_LLADDR, NDA_PROBES, NDA_CACHEINFO], permanent.Attributes.Select(a => a.Type));
        NeighbourEntry multicast = NeighbourEntry.Decode(messages[1]);
        Assert.Equal(
            new NeighbourEntry { InterfaceIndex = 2, Destination = IPAddress.Parse("ff02::2"), LinkLayerAddress = Mac("33:33:00:00:00:02"), State = NUD_NOARP, Proxy = false, Flags = 0 },
            multicast with { Attributes = [] });
        AssertDone(Captured.NeighShowDevReply2, NLM_F_MULTI);
    }

    // ------------------------------------------------------------------------------------------
    // errors and acks
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Error_invalid_gateway_decodes_errno_and_extended_ack_and_echoes_our_request()
    {
        // ip route add 203.0.113.0/24 via 198.51.100.77 dev d0 table 100 (proto boot, ip's default).
        var route = new RouteEntry
        {
            Destination = IPAddress.Parse("203.0.113.0"),
            DestinationPrefixLength = 24,
            Gateway = IPAddress.Parse("198.51.100.77"),
            OutputInterface = 2,
            Table = 100,
        };
        AssertExact(Captured.ErrorRouteInvalidGatewayRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        NetlinkMessage m = One(Captured.ErrorRouteInvalidGatewayReply);
        Assert.Equal(NLMSG_ERROR, m.Type);
        Assert.Equal(NLM_F_ACK_TLVS, m.Header.Flags);
        NetlinkError e = NetlinkError.Decode(m);
        Assert.Equal(Errno.ENETUNREACH, e.Errno);
        Assert.Equal("ENETUNREACH", Errno.Name(e.Errno));
        Assert.Equal("Nexthop has invalid gateway", e.Message);
        Assert.Null(e.Offset);
        byte[] request = IpRequest(Captured.ErrorRouteInvalidGatewayRequest);
        Assert.Equal(NetlinkMessageHeader.ReadLittleEndian(request), e.RequestHeader);
        // Without NETLINK_CAP_ACK (ip does not set it) the whole request is echoed after the error code.
        AssertBytes(request, m.Payload.Span.Slice(4, request.Length), "echoed request");

        var ex = new NetlinkException("ip route add", e.Errno, e.Message, e.Offset, e.RequestHeader.Sequence);
        Assert.Equal("ENETUNREACH", ex.ErrnoName);
        Assert.Equal("Nexthop has invalid gateway", ex.ExtAckMessage);
        Assert.False(ex.IsNotFound);
    }

    [Fact]
    public void Error_duplicate_rule_decodes_EEXIST_without_extended_ack()
    {
        NetlinkMessage m = One(Captured.ErrorRuleExistsReply);
        Assert.Equal(NLMSG_ERROR, m.Type);
        Assert.Equal(0, m.Header.Flags); // no NLM_F_ACK_TLVS: the kernel had no message for this one
        NetlinkError e = NetlinkError.Decode(m);
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Null(e.Message);
        Assert.Null(e.Offset);
        Assert.Equal(NetlinkMessageHeader.ReadLittleEndian(IpRequest(Captured.ErrorRuleExistsRequest)), e.RequestHeader);
        Assert.True(new NetlinkException("ip rule add", e.Errno).IsExists);
    }

    [Fact]
    public void Error_address_not_there_decodes_EADDRNOTAVAIL()
    {
        NetlinkError e = NetlinkError.Decode(One(Captured.ErrorAddrDelMissingReply));
        Assert.Equal(Errno.EADDRNOTAVAIL, e.Errno); // what AddressService.Delete reports as "was not there"
        Assert.Null(e.Message);
        Assert.Equal(new NetlinkMessageHeader(40, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, Seq(Captured.ErrorAddrDelMissingRequest), 0), e.RequestHeader);
    }

    [Fact]
    public void Ack_decodes_errno_0_with_the_capped_request_header()
    {
        var route = new RouteEntry { Destination = IPAddress.Parse("192.0.2.10"), DestinationPrefixLength = 32, OutputInterface = 2, Table = 100 };
        AssertExact(Captured.AckRouteAddRequest, (ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL));

        NetlinkMessage m = One(Captured.AckRouteAddReply);
        Assert.Equal(NLMSG_ERROR, m.Type);
        Assert.Equal(NLM_F_CAPPED, m.Header.Flags);
        Assert.Equal(SizeofNlmsgerr, m.Payload.Length); // only the request's header is echoed
        NetlinkError e = NetlinkError.Decode(m);
        Assert.Equal(0, e.Errno);
        Assert.Null(e.Message);
        Assert.Equal(new NetlinkMessageHeader(44, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, Seq(Captured.AckRouteAddRequest), 0), e.RequestHeader);
        Assert.Equal(m.Header.Sequence, e.RequestHeader.Sequence);
    }

    // ------------------------------------------------------------------------------------------
    // events (ip monitor link address route rule)
    // ------------------------------------------------------------------------------------------

    [Fact]
    public void Event_link_add_and_delete()
    {
        LinkEvent added = Assert.IsType<LinkEvent>(Event(Captured.EventLinkAddNewLink));
        Assert.False(added.Deleted);
        var e1 = new Link
        {
            Index = 3,
            Name = "e1",
            Flags = IFF_BROADCAST | IFF_NOARP,
            DeviceType = 1,
            Mtu = 1500,
            OperState = 2,
            Kind = "dummy",
            HardwareAddress = Mac("52:ad:03:73:dc:f9"),
        };
        Assert.Equal(e1, added.Link with { Attributes = [] });
        Assert.Contains(added.Link.Attributes, a => a.Type == IFLA_STATS64);

        LinkEvent deleted = Assert.IsType<LinkEvent>(Event(Captured.EventLinkDelDelLink));
        Assert.True(deleted.Deleted);
        Assert.Equal(e1, deleted.Link with { Attributes = [] });
        Assert.Empty(deleted.Link.Attributes.Single(a => a.Type == IFLA_AF_SPEC).Payload.ToArray()); // the kernel sends it empty on delete
    }

    [Fact]
    public void Event_address_add_and_delete()
    {
        var a = new AddressEntry { InterfaceIndex = 2, Local = D0Address, PrefixLength = 24, Flags = IFA_F_PERMANENT, Label = "d0", Scope = RT_SCOPE_UNIVERSE };
        AddressEvent added = Assert.IsType<AddressEvent>(Event(Captured.EventAddrAddNewAddr));
        Assert.False(added.Deleted);
        Assert.Equal(a, added.Address with { Attributes = [] });
        Assert.Contains(added.Address.Attributes, x => x.Type == IFA_CACHEINFO);

        AddressEvent deleted = Assert.IsType<AddressEvent>(Event(Captured.EventAddrDelDelAddr));
        Assert.True(deleted.Deleted);
        Assert.Equal(a, deleted.Address with { Attributes = [] });
    }

    [Fact]
    public void Event_routes_the_kernel_adds_and_removes_with_an_address()
    {
        // ip addr add 192.0.2.1/24 dev d0 makes the kernel add three routes, and deleting it removes them.
        var local = new RouteEntry
        {
            Destination = D0Address,
            DestinationPrefixLength = 32,
            Table = RT_TABLE_LOCAL,
            Protocol = RTPROT_KERNEL,
            Scope = RT_SCOPE_HOST,
            Type = RTN_LOCAL,
            PreferredSource = D0Address,
            OutputInterface = 2,
        };
        var subnet = new RouteEntry
        {
            Destination = IPAddress.Parse("192.0.2.0"),
            DestinationPrefixLength = 24,
            Table = RT_TABLE_MAIN,
            Protocol = RTPROT_KERNEL,
            Scope = RT_SCOPE_LINK,
            Type = RTN_UNICAST,
            PreferredSource = D0Address,
            OutputInterface = 2,
        };
        var broadcast = new RouteEntry
        {
            Destination = IPAddress.Parse("192.0.2.255"),
            DestinationPrefixLength = 32,
            Table = RT_TABLE_LOCAL,
            Protocol = RTPROT_KERNEL,
            Scope = RT_SCOPE_LINK,
            Type = RTN_BROADCAST,
            PreferredSource = D0Address,
            OutputInterface = 2,
        };
        AssertRouteEvent(Captured.EventAddrAddNewRoute1, local, deleted: false);
        AssertRouteEvent(Captured.EventAddrAddNewRoute2, subnet, deleted: false);
        AssertRouteEvent(Captured.EventAddrAddNewRoute3, broadcast, deleted: false);
        AssertRouteEvent(Captured.EventAddrDelDelRoute1, subnet, deleted: true);
        AssertRouteEvent(Captured.EventAddrDelDelRoute2, broadcast, deleted: true);
        AssertRouteEvent(Captured.EventAddrDelDelRoute3, local, deleted: true);
    }

    [Fact]
    public void Event_route_add_and_delete()
    {
        var route = new RouteEntry
        {
            Destination = IPAddress.Parse("203.0.113.0"),
            DestinationPrefixLength = 24,
            Gateway = IPAddress.Parse("192.0.2.254"),
            OutputInterface = 2,
            Table = 100,
            Protocol = 99,
            Scope = RT_SCOPE_UNIVERSE,
            Type = RTN_UNICAST,
        };
        AssertRouteEvent(Captured.EventRouteAddNewRoute, route, deleted: false);
        AssertRouteEvent(Captured.EventRouteDelDelRoute, route, deleted: true);
        // The add event echoes the NLM_F_CREATE|NLM_F_EXCL of the request that caused it.
        Assert.Equal(NLM_F_CREATE | NLM_F_EXCL, One(Captured.EventRouteAddNewRoute).Header.Flags);
    }

    [Fact]
    public void Event_rule_add_and_delete()
    {
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 100, Priority = 1000, Protocol = RTPROT_UNSPEC };
        RuleEvent added = Assert.IsType<RuleEvent>(Event(Captured.EventRuleAddNewRule));
        Assert.False(added.Deleted);
        Assert.Equal(rule, added.Rule with { Attributes = [] });
        RuleEvent deleted = Assert.IsType<RuleEvent>(Event(Captured.EventRuleDelDelRule));
        Assert.True(deleted.Deleted);
        Assert.Equal(rule, deleted.Rule with { Attributes = [] });
    }

    // ------------------------------------------------------------------------------------------
    // helpers
    // ------------------------------------------------------------------------------------------

    /// <summary>Every capture in Golden/Captured.*.cs, by property name.</summary>
    private static List<(string Name, byte[] Bytes)> AllCaptures() =>
        typeof(Captured).GetProperties(BindingFlags.Public | BindingFlags.Static)
            .Where(p => p.PropertyType == typeof(ReadOnlySpan<byte>))
            .Select(p => (p.Name, p.GetMethod!.CreateDelegate<Func<ReadOnlySpan<byte>>>()().ToArray()))
            .ToList();

    /// <summary>
    /// The messages of a captured datagram. ip sends its whole request struct for a dump, so a
    /// request can carry zeros beyond the last nlmsg_len; they are checked to be zeros and dropped.
    /// </summary>
    private static List<NetlinkMessage> Messages(ReadOnlySpan<byte> capture, string what = "capture")
    {
        int end = 0;
        while (end + NetlinkMessageHeader.Size <= capture.Length && BinaryPrimitives.ReadUInt32LittleEndian(capture[end..]) is var len and > 0)
        {
            end += Align.NlmsgAlign((int)len);
        }

        end = Math.Min(end, capture.Length);
        Assert.True(capture[end..].IndexOfAnyExcept((byte)0) < 0, $"{what}: non-zero bytes after the last message");
        return MessageReader.ReadAll(capture[..end].ToArray());
    }

    private static NetlinkMessage One(ReadOnlySpan<byte> capture) => Assert.Single(Messages(capture));

    /// <summary>ip's request: its single message, up to nlmsg_len.</summary>
    private static byte[] IpRequest(ReadOnlySpan<byte> capture)
    {
        NetlinkMessage m = One(capture);
        return capture[..(int)m.Header.Length].ToArray();
    }

    private static uint Seq(ReadOnlySpan<byte> message) => BinaryPrimitives.ReadUInt32LittleEndian(message[8..]);

    /// <summary>Our request as the socket sends it: built, then stamped (NLM_F_REQUEST|NLM_F_ACK, nlmsg_pid 0) with <paramref name="sequence"/>.</summary>
    private static byte[] Ours(RequestBuilder build, uint sequence)
    {
        byte[] buffer = new byte[RouteNetlink.RequestBufferSize];
        var w = new NetlinkWriter(buffer);
        build(ref w);
        byte[] request = buffer[..w.Length];
        NetlinkSocket.StampRequest(request, sequence);
        return request;
    }

    /// <summary>Our request, stamped with ip's sequence number, is byte for byte what ip sent.</summary>
    private static void AssertExact(ReadOnlySpan<byte> capture, RequestBuilder build)
    {
        byte[] ip = IpRequest(capture);
        AssertBytes(ip, Ours(build, Seq(ip)), "request");
    }

    /// <summary>
    /// A GET (a dump, or a lookup by key): byte for byte ip's, except that nlmsg_flags also has
    /// NLM_F_ACK, which ip leaves out of its GETs and we put in every request (the socket stamps it):
    /// a GET by key is then answered by the reply and an ack, a dump by its parts and NLMSG_DONE only
    /// (the kernel acks no dump). And except whatever <paramref name="ourDifferences"/> changes in
    /// ip's bytes (documented at the call).
    /// </summary>
    private static void AssertGetRequest(ReadOnlySpan<byte> capture, RequestBuilder build, Action<byte[]>? ourDifferences = null)
    {
        byte[] expected = IpRequest(capture);
        ushort ipFlags = BinaryPrimitives.ReadUInt16LittleEndian(expected.AsSpan(6));
        Assert.True((ipFlags & NLM_F_ACK) == 0, $"ip's GET flags 0x{ipFlags:x4} already ask for an ack");
        BinaryPrimitives.WriteUInt16LittleEndian(expected.AsSpan(6), (ushort)(ipFlags | NLM_F_ACK));
        ourDifferences?.Invoke(expected);
        AssertBytes(expected, Ours(build, Seq(expected)), "GET request");
    }

    private static void AssertDone(ReadOnlySpan<byte> capture, ushort flags)
    {
        NetlinkMessage done = One(capture);
        Assert.Equal(NLMSG_DONE, done.Type);
        Assert.Equal(flags, done.Header.Flags);
        Assert.Equal(new NetlinkError(0, default, null, null), NetlinkError.DecodeDone(done));
    }

    private static RouteEvent Event(ReadOnlySpan<byte> capture) =>
        RouteMonitor.Decode(One(capture)) ?? throw new Xunit.Sdk.XunitException("RouteMonitor.Decode returned null");

    private static void AssertRouteEvent(ReadOnlySpan<byte> capture, RouteEntry expected, bool deleted)
    {
        RouteChangeEvent e = Assert.IsType<RouteChangeEvent>(Event(capture));
        Assert.Equal(deleted, e.Deleted);
        Assert.Equal(expected, e.Route with { Attributes = [] });
        Assert.Equal(RTA_TABLE, e.Route.Attributes[0].Type);
    }

    private static PhysicalAddress Mac(string s) => new(Convert.FromHexString(s.Replace(":", "", StringComparison.Ordinal)));

    private static void AssertBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what)
    {
        if (expected.SequenceEqual(actual))
        {
            return;
        }

        int at = expected.CommonPrefixLength(actual);
        string field = at switch
        {
            < 4 => "nlmsg_len",
            < 6 => "nlmsg_type",
            < 8 => "nlmsg_flags",
            < 12 => "nlmsg_seq",
            < 16 => "nlmsg_pid",
            _ => "payload",
        };
        Assert.Fail($"{what}: ours differs from iproute2's at offset {at} ({field}); iproute2: {expected.Length} bytes, ours: {actual.Length}\niproute2:\n{Hex(expected)}ours:\n{Hex(actual)}");
    }

    private static string Hex(ReadOnlySpan<byte> b)
    {
        var s = new StringBuilder();
        for (int i = 0; i < b.Length; i += 16)
        {
            s.Append(CultureInfo.InvariantCulture, $"  {i,4}: {Convert.ToHexString(b.Slice(i, Math.Min(16, b.Length - i)))}\n");
        }

        return s.ToString();
    }
}
