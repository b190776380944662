using System.Reflection;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Netlink.Tests;

/// <summary>
/// Our kernel constants, struct sizes and the member offsets our encoders and decoders use,
/// checked against the installed kernel UAPI headers by compiling a C file of static asserts
/// (see <see cref="CStaticAsserts"/>). Every const of the constants classes is enumerated by
/// reflection, so a constant added later is checked without touching this file.
/// </summary>
public class StructLayoutTests
{
    [Fact]
    public void NetlinkConstants_match_linux_netlink_h()
    {
        var c = new CStaticAsserts();
        List<string> names = c.AllConstantsOf(typeof(NetlinkConstants), new Dictionary<string, string>
        {
            // nla_type is a __u16; the C macro is an int (~(...) is negative).
            ["NLA_TYPE_MASK"] = "(__u16)NLA_TYPE_MASK",
            ["SizeofNlmsghdr"] = "sizeof(struct nlmsghdr)",
            ["SizeofNlmsgerr"] = "sizeof(struct nlmsgerr)",
            ["SizeofSockaddrNl"] = "sizeof(struct sockaddr_nl)",
        });
        Assert.Contains("NLM_F_ACK_TLVS", names);
        c.AllConstantsOf(typeof(NetlinkMessageHeader), new Dictionary<string, string> { ["Size"] = "sizeof(struct nlmsghdr)" });
        c.Compile("netlink");
    }

    [Fact]
    public void RtnetlinkConstants_match_the_rtnetlink_headers()
    {
        var c = new CStaticAsserts();
        List<string> names = c.AllConstantsOf(typeof(RtnetlinkConstants), new Dictionary<string, string>
        {
            ["SizeofIfinfomsg"] = "sizeof(struct ifinfomsg)",
            ["SizeofIfaddrmsg"] = "sizeof(struct ifaddrmsg)",
            ["SizeofRtmsg"] = "sizeof(struct rtmsg)",
            ["SizeofFibRuleHdr"] = "sizeof(struct fib_rule_hdr)",
            ["SizeofNdmsg"] = "sizeof(struct ndmsg)",
            ["SizeofRtgenmsg"] = "sizeof(struct rtgenmsg)",
        });
        Assert.True(names.Count > 150, $"only {names.Count} constants found by reflection");
        c.Compile("rtnetlink");
    }

    [Fact]
    public void Align_constants_and_helpers_match_the_C_macros()
    {
        var c = new CStaticAsserts();
        c.AllConstantsOf(typeof(Align));
        c.Size("struct nlattr", Align.NLA_HDRLEN, "NLA_HDRLEN as sizeof(struct nlattr)");
        for (int n = 0; n <= 70; n++)
        {
            c.Equal($"NLMSG_ALIGN({n})", Align.NlmsgAlign(n), $"Align.NlmsgAlign({n})");
            c.Equal($"NLA_ALIGN({n})", Align.NlaAlign(n), $"Align.NlaAlign({n})");
        }

        c.Compile("align");
    }

    [Fact]
    public void Struct_sizes_and_member_offsets_match_what_the_codecs_use()
    {
        var c = new CStaticAsserts();

        // NetlinkMessageHeader.ReadLittleEndian / WriteLittleEndian.
        c.Size("struct nlmsghdr", NetlinkMessageHeader.Size, "NetlinkMessageHeader.Size");
        c.Member("struct nlmsghdr", "nlmsg_len", 0, 4);
        c.Member("struct nlmsghdr", "nlmsg_type", 4, 2);
        c.Member("struct nlmsghdr", "nlmsg_flags", 6, 2);
        c.Member("struct nlmsghdr", "nlmsg_seq", 8, 4);
        c.Member("struct nlmsghdr", "nlmsg_pid", 12, 4);

        // NetlinkError.Decode: int error, then the echoed request header.
        c.Member("struct nlmsgerr", "error", 0, 4);
        c.Member("struct nlmsgerr", "msg", 4, NetlinkConstants.SizeofNlmsghdr);

        // AttributeReader / NetlinkWriter attribute headers.
        c.Member("struct nlattr", "nla_len", 0, 2);
        c.Member("struct nlattr", "nla_type", 2, 2);

        // NetlinkSocket.Create: nl_family at 0, nl_pid read at sa + 4.
        c.Member("struct sockaddr_nl", "nl_family", 0, 2);
        c.Member("struct sockaddr_nl", "nl_pid", 4, 4);
        c.Member("struct sockaddr_nl", "nl_groups", 8, 4);

        // LinkService.Ifinfomsg, Link.Decode.
        c.Size("struct ifinfomsg", RtnetlinkConstants.SizeofIfinfomsg, "SizeofIfinfomsg");
        c.Member("struct ifinfomsg", "ifi_family", 0, 1);
        c.Member("struct ifinfomsg", "ifi_type", 2, 2);
        c.Member("struct ifinfomsg", "ifi_index", 4, 4);
        c.Member("struct ifinfomsg", "ifi_flags", 8, 4);
        c.Member("struct ifinfomsg", "ifi_change", 12, 4);

        // AddressEntry.Encode / Decode.
        c.Size("struct ifaddrmsg", RtnetlinkConstants.SizeofIfaddrmsg, "SizeofIfaddrmsg");
        c.Member("struct ifaddrmsg", "ifa_family", 0, 1);
        c.Member("struct ifaddrmsg", "ifa_prefixlen", 1, 1);
        c.Member("struct ifaddrmsg", "ifa_flags", 2, 1);
        c.Member("struct ifaddrmsg", "ifa_scope", 3, 1);
        c.Member("struct ifaddrmsg", "ifa_index", 4, 4);

        // RouteEntry.Encode / Decode.
        c.Size("struct rtmsg", RtnetlinkConstants.SizeofRtmsg, "SizeofRtmsg");
        c.Member("struct rtmsg", "rtm_family", 0, 1);
        c.Member("struct rtmsg", "rtm_dst_len", 1, 1);
        c.Member("struct rtmsg", "rtm_src_len", 2, 1);
        c.Member("struct rtmsg", "rtm_tos", 3, 1);
        c.Member("struct rtmsg", "rtm_table", 4, 1);
        c.Member("struct rtmsg", "rtm_protocol", 5, 1);
        c.Member("struct rtmsg", "rtm_scope", 6, 1);
        c.Member("struct rtmsg", "rtm_type", 7, 1);
        c.Member("struct rtmsg", "rtm_flags", 8, 4);

        // RuleEntry.Encode / Decode.
        c.Size("struct fib_rule_hdr", RtnetlinkConstants.SizeofFibRuleHdr, "SizeofFibRuleHdr");
        c.Member("struct fib_rule_hdr", "family", 0, 1);
        c.Member("struct fib_rule_hdr", "dst_len", 1, 1);
        c.Member("struct fib_rule_hdr", "src_len", 2, 1);
        c.Member("struct fib_rule_hdr", "tos", 3, 1);
        c.Member("struct fib_rule_hdr", "table", 4, 1);
        c.Member("struct fib_rule_hdr", "action", 7, 1);
        c.Member("struct fib_rule_hdr", "flags", 8, 4);

        // NeighbourEntry.Encode / Decode.
        c.Size("struct ndmsg", RtnetlinkConstants.SizeofNdmsg, "SizeofNdmsg");
        c.Member("struct ndmsg", "ndm_family", 0, 1);
        c.Member("struct ndmsg", "ndm_ifindex", 4, 4);
        c.Member("struct ndmsg", "ndm_state", 8, 2);
        c.Member("struct ndmsg", "ndm_flags", 10, 1);
        c.Member("struct ndmsg", "ndm_type", 11, 1);

        c.Size("struct rtgenmsg", RtnetlinkConstants.SizeofRtgenmsg, "SizeofRtgenmsg");
        c.Member("struct rtgenmsg", "rtgen_family", 0, 1);

        // TunDevice.Open: a 40-byte struct ifreq, the name first, ifr_flags (a short) right after it.
        c.Size("struct ifreq", 40, "struct ifreq in Tun.Linux.cs");
        c.Member("struct ifreq", "ifr_name", 0, 16);
        c.Member("struct ifreq", "ifr_flags", 16, 2);

        c.Compile("layout");
    }

    [Fact]
    public void Errno_constants_and_names_match_errno_h()
    {
        var c = new CStaticAsserts();
        c.AllConstantsOf(typeof(Errno));
        int named = 0;
        for (int e = 1; e < 200; e++)
        {
            string name = Errno.Name(e);
            if (!name.StartsWith("errno ", StringComparison.Ordinal))
            {
                c.Equal(name, e, $"Errno.Name({e}) = \"{name}\"");
                named++;
            }
        }

        Assert.True(named > 50, $"only {named} errno names");
        c.Compile("errno");
    }

    [Fact]
    public void Private_kernel_constants_of_the_socket_code_match_the_headers()
    {
        var c = new CStaticAsserts();
        // Every const of TunDevice is a C name from linux/if_tun.h and linux/if.h (TUNSETIFF, IFF_TUN, IFNAMSIZ ...).
        List<string> tun = c.AllConstantsOf(typeof(TunDevice), includeNonPublic: true);
        Assert.Contains("TUNSETIFF", tun);
        Assert.Contains("TUNSETPERSIST", tun);
        c.Equal("MSG_TRUNC", PrivateConst(typeof(NetlinkSocket), "MSG_TRUNC"), "NetlinkSocket.MSG_TRUNC");
        c.Equal("CLONE_NEWNET", PrivateConst(typeof(NetworkNamespace), "CLONE_NEWNET"), "NetworkNamespace.CLONE_NEWNET");
        c.Compile("private");
    }

    private static object PrivateConst(Type t, string name) =>
        t.GetField(name, BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)?.GetRawConstantValue()
        ?? throw new InvalidOperationException($"{t.Name}.{name} is not a constant any more; update this test");
}
