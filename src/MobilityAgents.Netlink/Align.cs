namespace MobilityAgents.Netlink;

/// <summary>Netlink alignment helpers, ported from include/uapi/linux/netlink.h.</summary>
public static class Align
{
    /// <summary>#define NLMSG_ALIGNTO 4U</summary>
    public const int NLMSG_ALIGNTO = 4;

    /// <summary>#define NLA_ALIGNTO 4</summary>
    public const int NLA_ALIGNTO = 4;

    /// <summary>#define NLMSG_HDRLEN ((int) NLMSG_ALIGN(sizeof(struct nlmsghdr)))</summary>
    public const int NLMSG_HDRLEN = 16;

    /// <summary>#define NLA_HDRLEN ((int) NLA_ALIGN(sizeof(struct nlattr)))</summary>
    public const int NLA_HDRLEN = 4;

    /// <summary>#define NLMSG_ALIGN(len) ( ((len)+NLMSG_ALIGNTO-1) &amp; ~(NLMSG_ALIGNTO-1) )</summary>
    public static int NlmsgAlign(int len) => (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);

    /// <summary>#define NLA_ALIGN(len) (((len) + NLA_ALIGNTO - 1) &amp; ~(NLA_ALIGNTO - 1))</summary>
    public static int NlaAlign(int len) => (len + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}
