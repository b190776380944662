namespace MobilityAgents.Core;

/// <summary>
/// How MobilityAgents marks every kernel object it creates, so that a restart (or a crash) can
/// find exactly its own objects and sweep those no binding owns, and never touch anyone else's.
/// </summary>
public static class Ownership
{
    /// <summary>
    /// rtm_protocol of every route and FRA_PROTOCOL of every rule we install. 77 ('M') is not
    /// assigned in iproute2's rt_protos (99 is openr, 186-192 routing daemons, 42 babel).
    /// </summary>
    public const byte RouteProtocol = 77;

    /// <summary>
    /// Link names start with this prefix ("ma" + a short binding tag, within IFNAMSIZ 15), and the
    /// link alias (IFLA_IFALIAS) starts with <see cref="LinkAliasPrefix"/>: a name alone could be
    /// chosen by someone else; name and alias together are ours.
    /// </summary>
    public const string LinkNamePrefix = "ma";

    /// <summary>IFLA_IFALIAS of links we create: "mobilityagents:" followed by the binding id.</summary>
    public const string LinkAliasPrefix = "mobilityagents:";

    /// <summary>
    /// Policy rules live in a priority band with gaps, below the main table's 32766 and above
    /// the local table's 0, leaving room for the administrator's own rules before and after.
    /// </summary>
    public const uint RulePriorityFirst = 10_000;

    public const uint RulePriorityLast = 10_999;

    /// <summary>
    /// The mobile agent's routing table for what leaves through the tunnel (the talk's
    /// "200 mi_tunel"). 0x4d41 ("MA") sits far from the tables distributions and VPNs use
    /// (tailscale 52, wg-quick 51820, the talk's 200).
    /// </summary>
    public const uint MobileTable = 0x4d41;

    /// <summary>
    /// One fwmark bit for traffic selected into the tunnel by mark (the talk marks TCP port 25);
    /// a single bit coexists with other users of the mark (tailscale uses 0x40000/0x80000).
    /// </summary>
    public const uint FwMarkBit = 0x0010_0000;

    /// <summary>NDA_PROTOCOL of proxy-ARP entries we install (same value as routes).</summary>
    public const byte NeighbourProtocol = RouteProtocol;
}
