namespace MobilityAgents.Rtnetlink;

/// <summary>
/// rtnetlink constants with their C names, from include/uapi/linux/{rtnetlink.h, if_link.h,
/// if_tunnel.h, if_addr.h, fib_rules.h, neighbour.h, lwtunnel.h, veth.h, if.h}. Checked against
/// the installed headers by the StructLayout test (it compiles C static_asserts).
/// </summary>
public static class RtnetlinkConstants
{
    // Message types (rtnetlink.h).
    public const ushort RTM_NEWLINK = 16;
    public const ushort RTM_DELLINK = 17;
    public const ushort RTM_GETLINK = 18;
    public const ushort RTM_SETLINK = 19;
    public const ushort RTM_NEWADDR = 20;
    public const ushort RTM_DELADDR = 21;
    public const ushort RTM_GETADDR = 22;
    public const ushort RTM_NEWROUTE = 24;
    public const ushort RTM_DELROUTE = 25;
    public const ushort RTM_GETROUTE = 26;
    public const ushort RTM_NEWNEIGH = 28;
    public const ushort RTM_DELNEIGH = 29;
    public const ushort RTM_GETNEIGH = 30;
    public const ushort RTM_NEWRULE = 32;
    public const ushort RTM_DELRULE = 33;
    public const ushort RTM_GETRULE = 34;

    // Multicast groups (enum rtnetlink_groups).
    public const uint RTNLGRP_LINK = 1;
    public const uint RTNLGRP_NEIGH = 3;
    public const uint RTNLGRP_IPV4_IFADDR = 5;
    public const uint RTNLGRP_IPV4_ROUTE = 7;
    public const uint RTNLGRP_IPV4_RULE = 8;

    // Address families (socket.h).
    public const byte AF_UNSPEC = 0;
    public const byte AF_INET = 2;
    public const byte AF_INET6 = 10;

    // rtm_type.
    public const byte RTN_UNSPEC = 0;
    public const byte RTN_UNICAST = 1;
    public const byte RTN_LOCAL = 2;
    public const byte RTN_BROADCAST = 3;
    public const byte RTN_BLACKHOLE = 6;
    public const byte RTN_UNREACHABLE = 7;
    public const byte RTN_PROHIBIT = 8;
    public const byte RTN_THROW = 9;

    // rtm_protocol.
    public const byte RTPROT_UNSPEC = 0;
    public const byte RTPROT_REDIRECT = 1;
    public const byte RTPROT_KERNEL = 2;
    public const byte RTPROT_BOOT = 3;
    public const byte RTPROT_STATIC = 4;

    // rtm_scope.
    public const byte RT_SCOPE_UNIVERSE = 0;
    public const byte RT_SCOPE_SITE = 200;
    public const byte RT_SCOPE_LINK = 253;
    public const byte RT_SCOPE_HOST = 254;
    public const byte RT_SCOPE_NOWHERE = 255;

    // Reserved table identifiers.
    public const uint RT_TABLE_UNSPEC = 0;
    public const uint RT_TABLE_DEFAULT = 253;
    public const uint RT_TABLE_MAIN = 254;
    public const uint RT_TABLE_LOCAL = 255;

    // rtm_flags.
    public const uint RTM_F_NOTIFY = 0x100;
    public const uint RTM_F_CLONED = 0x200;
    public const uint RTM_F_LOOKUP_TABLE = 0x1000;

    // enum rtattr_type_t
    public const ushort RTA_DST = 1;
    public const ushort RTA_SRC = 2;
    public const ushort RTA_IIF = 3;
    public const ushort RTA_OIF = 4;
    public const ushort RTA_GATEWAY = 5;
    public const ushort RTA_PRIORITY = 6;
    public const ushort RTA_PREFSRC = 7;
    public const ushort RTA_METRICS = 8;
    public const ushort RTA_MULTIPATH = 9;
    public const ushort RTA_FLOW = 11;
    public const ushort RTA_CACHEINFO = 12;
    public const ushort RTA_TABLE = 15;
    public const ushort RTA_MARK = 16;
    public const ushort RTA_VIA = 18;
    public const ushort RTA_PREF = 20;
    public const ushort RTA_ENCAP_TYPE = 21;
    public const ushort RTA_ENCAP = 22;
    public const ushort RTA_EXPIRES = 23;
    public const ushort RTA_PAD = 24;
    public const ushort RTA_UID = 25;

    // RTA_METRICS members.
    public const ushort RTAX_MTU = 2;
    public const ushort RTAX_ADVMSS = 8;

    // enum lwtunnel_encap_types / lwtunnel_ip_t
    public const ushort LWTUNNEL_ENCAP_NONE = 0;
    public const ushort LWTUNNEL_ENCAP_IP = 2;
    public const ushort LWTUNNEL_IP_ID = 1;
    public const ushort LWTUNNEL_IP_DST = 2;
    public const ushort LWTUNNEL_IP_SRC = 3;
    public const ushort LWTUNNEL_IP_TTL = 4;
    public const ushort LWTUNNEL_IP_TOS = 5;
    public const ushort LWTUNNEL_IP_FLAGS = 6;

    // IFLA_* (if_link.h).
    public const ushort IFLA_ADDRESS = 1;
    public const ushort IFLA_BROADCAST = 2;
    public const ushort IFLA_IFNAME = 3;
    public const ushort IFLA_MTU = 4;
    public const ushort IFLA_LINK = 5;
    public const ushort IFLA_MASTER = 10;
    public const ushort IFLA_TXQLEN = 13;
    public const ushort IFLA_OPERSTATE = 16;
    public const ushort IFLA_LINKMODE = 17;
    public const ushort IFLA_LINKINFO = 18;
    public const ushort IFLA_IFALIAS = 20;
    public const ushort IFLA_GROUP = 27;
    public const ushort IFLA_NET_NS_FD = 28;
    public const ushort IFLA_EXT_MASK = 29;
    public const ushort IFLA_LINK_NETNSID = 37;
    public const ushort IFLA_MIN_MTU = 50;
    public const ushort IFLA_MAX_MTU = 51;

    // IFLA_LINKINFO members.
    public const ushort IFLA_INFO_KIND = 1;
    public const ushort IFLA_INFO_DATA = 2;

    // IFLA_INFO_DATA of ipip (if_tunnel.h).
    public const ushort IFLA_IPTUN_LINK = 1;
    public const ushort IFLA_IPTUN_LOCAL = 2;
    public const ushort IFLA_IPTUN_REMOTE = 3;
    public const ushort IFLA_IPTUN_TTL = 4;
    public const ushort IFLA_IPTUN_TOS = 5;
    public const ushort IFLA_IPTUN_FLAGS = 8;
    public const ushort IFLA_IPTUN_PROTO = 9;
    public const ushort IFLA_IPTUN_PMTUDISC = 10;
    public const ushort IFLA_IPTUN_ENCAP_TYPE = 15;
    public const ushort IFLA_IPTUN_ENCAP_FLAGS = 16;
    public const ushort IFLA_IPTUN_ENCAP_SPORT = 17;
    public const ushort IFLA_IPTUN_ENCAP_DPORT = 18;
    public const ushort IFLA_IPTUN_COLLECT_METADATA = 19;
    public const ushort IFLA_IPTUN_FWMARK = 20;

    // veth.h
    public const ushort VETH_INFO_PEER = 1;

    // net_device_flags (if.h).
    public const uint IFF_UP = 0x1;
    public const uint IFF_BROADCAST = 0x2;
    public const uint IFF_LOOPBACK = 0x8;
    public const uint IFF_POINTOPOINT = 0x10;
    public const uint IFF_RUNNING = 0x40;
    public const uint IFF_NOARP = 0x80;
    public const uint IFF_LOWER_UP = 0x10000;

    // RTEXT_FILTER_* for IFLA_EXT_MASK.
    public const uint RTEXT_FILTER_VF = 1;
    public const uint RTEXT_FILTER_SKIP_STATS = 1 << 3;

    // IFA_* (if_addr.h).
    public const ushort IFA_ADDRESS = 1;
    public const ushort IFA_LOCAL = 2;
    public const ushort IFA_LABEL = 3;
    public const ushort IFA_BROADCAST = 4;
    public const ushort IFA_CACHEINFO = 6;
    public const ushort IFA_FLAGS = 8;
    public const ushort IFA_RT_PRIORITY = 9;
    public const ushort IFA_PROTO = 11;
    public const uint IFA_F_SECONDARY = 0x01;
    public const uint IFA_F_NODAD = 0x02;
    public const uint IFA_F_PERMANENT = 0x80;
    public const uint IFA_F_NOPREFIXROUTE = 0x200;

    // FRA_* (fib_rules.h).
    public const ushort FRA_DST = 1;
    public const ushort FRA_SRC = 2;
    public const ushort FRA_IIFNAME = 3;
    public const ushort FRA_GOTO = 4;
    public const ushort FRA_PRIORITY = 6;
    public const ushort FRA_FWMARK = 10;
    public const ushort FRA_FLOW = 11;
    public const ushort FRA_SUPPRESS_PREFIXLEN = 14;
    public const ushort FRA_TABLE = 15;
    public const ushort FRA_FWMASK = 16;
    public const ushort FRA_OIFNAME = 17;
    public const ushort FRA_L3MDEV = 19;
    public const ushort FRA_UID_RANGE = 20;
    public const ushort FRA_PROTOCOL = 21;
    public const ushort FRA_IP_PROTO = 22;
    public const ushort FRA_SPORT_RANGE = 23;
    public const ushort FRA_DPORT_RANGE = 24;
    public const byte FR_ACT_TO_TBL = 1;
    public const byte FR_ACT_GOTO = 2;
    public const byte FR_ACT_NOP = 3;
    public const byte FR_ACT_BLACKHOLE = 6;
    public const byte FR_ACT_UNREACHABLE = 7;
    public const byte FR_ACT_PROHIBIT = 8;
    public const uint FIB_RULE_INVERT = 0x00000002;
    public const uint FIB_RULE_IIF_DETACHED = 0x00000008;
    public const uint FIB_RULE_OIF_DETACHED = 0x00000010;

    // NDA_* (neighbour.h).
    public const ushort NDA_DST = 1;
    public const ushort NDA_LLADDR = 2;
    public const ushort NDA_CACHEINFO = 3;
    public const ushort NDA_PROBES = 4;
    public const ushort NDA_PROTOCOL = 12;
    public const byte NTF_USE = 0x01;
    public const byte NTF_SELF = 0x02;
    public const byte NTF_MASTER = 0x04;
    public const byte NTF_PROXY = 0x08;
    public const byte NTF_ROUTER = 0x80;
    public const ushort NUD_INCOMPLETE = 0x01;
    public const ushort NUD_REACHABLE = 0x02;
    public const ushort NUD_STALE = 0x04;
    public const ushort NUD_DELAY = 0x08;
    public const ushort NUD_PROBE = 0x10;
    public const ushort NUD_FAILED = 0x20;
    public const ushort NUD_NOARP = 0x40;
    public const ushort NUD_PERMANENT = 0x80;
    public const ushort NUD_NONE = 0x00;

    // Family headers (sizes checked against the C structs by the StructLayout test).
    /// <summary>sizeof(struct ifinfomsg)</summary>
    public const int SizeofIfinfomsg = 16;

    /// <summary>sizeof(struct ifaddrmsg)</summary>
    public const int SizeofIfaddrmsg = 8;

    /// <summary>sizeof(struct rtmsg)</summary>
    public const int SizeofRtmsg = 12;

    /// <summary>sizeof(struct fib_rule_hdr)</summary>
    public const int SizeofFibRuleHdr = 12;

    /// <summary>sizeof(struct ndmsg)</summary>
    public const int SizeofNdmsg = 12;

    /// <summary>sizeof(struct rtgenmsg)</summary>
    public const int SizeofRtgenmsg = 1;
}
