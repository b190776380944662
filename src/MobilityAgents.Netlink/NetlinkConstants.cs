namespace MobilityAgents.Netlink;

/// <summary>
/// Constants of the netlink core, with their C names, from include/uapi/linux/netlink.h.
/// (rtnetlink's own constants live in MobilityAgents.Rtnetlink.RtnetlinkConstants.)
/// </summary>
public static class NetlinkConstants
{
    // Address family and protocol.
    public const int AF_NETLINK = 16;
    public const int NETLINK_ROUTE = 0;
    public const int SOL_NETLINK = 270;

    // Socket options at SOL_NETLINK.
    public const int NETLINK_ADD_MEMBERSHIP = 1;
    public const int NETLINK_DROP_MEMBERSHIP = 2;
    public const int NETLINK_PKTINFO = 3;
    public const int NETLINK_BROADCAST_ERROR = 4;
    public const int NETLINK_NO_ENOBUFS = 5;
    public const int NETLINK_LISTEN_ALL_NSID = 8;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;
    public const int NETLINK_GET_STRICT_CHK = 12;

    // Message types below NLMSG_MIN_TYPE are control messages.
    public const ushort NLMSG_NOOP = 0x1;
    public const ushort NLMSG_ERROR = 0x2;
    public const ushort NLMSG_DONE = 0x3;
    public const ushort NLMSG_OVERRUN = 0x4;
    public const ushort NLMSG_MIN_TYPE = 0x10;

    // Flags values.
    public const ushort NLM_F_REQUEST = 0x01;
    public const ushort NLM_F_MULTI = 0x02;
    public const ushort NLM_F_ACK = 0x04;
    public const ushort NLM_F_ECHO = 0x08;
    public const ushort NLM_F_DUMP_INTR = 0x10;
    public const ushort NLM_F_DUMP_FILTERED = 0x20;

    // Modifiers to GET request.
    public const ushort NLM_F_ROOT = 0x100;
    public const ushort NLM_F_MATCH = 0x200;
    public const ushort NLM_F_ATOMIC = 0x400;
    public const ushort NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;

    // Modifiers to NEW request.
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;
    public const ushort NLM_F_APPEND = 0x800;

    // Modifiers to DELETE request.
    public const ushort NLM_F_NONREC = 0x100;
    public const ushort NLM_F_BULK = 0x200;

    // Flags for ACK message.
    public const ushort NLM_F_CAPPED = 0x100;
    public const ushort NLM_F_ACK_TLVS = 0x200;

    // enum nlmsgerr_attrs
    public const ushort NLMSGERR_ATTR_UNUSED = 0;
    public const ushort NLMSGERR_ATTR_MSG = 1;
    public const ushort NLMSGERR_ATTR_OFFS = 2;
    public const ushort NLMSGERR_ATTR_COOKIE = 3;
    public const ushort NLMSGERR_ATTR_POLICY = 4;
    public const ushort NLMSGERR_ATTR_MISS_TYPE = 5;
    public const ushort NLMSGERR_ATTR_MISS_NEST = 6;

    // struct nlattr nla_type flags.
    public const ushort NLA_F_NESTED = 1 << 15;
    public const ushort NLA_F_NET_BYTEORDER = 1 << 14;
    public const ushort NLA_TYPE_MASK = unchecked((ushort)~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));

    /// <summary>sizeof(struct nlmsghdr)</summary>
    public const int SizeofNlmsghdr = 16;

    /// <summary>sizeof(struct nlmsgerr): int error + struct nlmsghdr msg.</summary>
    public const int SizeofNlmsgerr = 20;

    /// <summary>sizeof(struct sockaddr_nl)</summary>
    public const int SizeofSockaddrNl = 12;
}
