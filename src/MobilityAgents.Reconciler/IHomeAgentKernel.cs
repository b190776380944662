using System.Net;
using System.Net.NetworkInformation;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler;

/// <summary>
/// The few kernel operations the home agent's reconciler uses, in one network namespace, with the
/// rtnetlink library's records. <see cref="NetlinkHomeAgentKernel"/> is the real one; the tests
/// use an in-memory kernel. Failures are thrown as the library throws them
/// (<c>NetlinkException</c> naming the <c>ip</c> equivalent and the errno, <see cref="IOException"/>
/// for sysctls); deletes of something already gone return false.
/// </summary>
public interface IHomeAgentKernel
{
    /// <summary>Every link. Equivalent to: <c>ip -d link show</c>.</summary>
    IReadOnlyList<Link> ListLinks();

    /// <summary>IPv4 routes of the main table. Equivalent to: <c>ip route show table main</c>.</summary>
    IReadOnlyList<RouteEntry> ListRoutes();

    /// <summary>Proxy-ARP entries. Equivalent to: <c>ip neigh show proxy</c>.</summary>
    IReadOnlyList<NeighbourEntry> ListProxies();

    /// <summary>
    /// Creates a classic ipip link, marked with <paramref name="alias"/>, down; returns its index.
    /// Equivalent to: <c>ip link add NAME mtu M type ipip ...; ip link set dev NAME alias A</c>.
    /// </summary>
    int AddIpip(string name, IpipParameters parameters, int mtu, string alias);

    /// <summary>Changes every ipip parameter in place. Equivalent to: <c>ip link set dev NAME type ipip ...</c>.</summary>
    void ChangeIpip(int index, IpipParameters parameters);

    /// <summary>Equivalent to: <c>ip link set dev NAME mtu M</c>.</summary>
    void SetMtu(int index, int mtu);

    /// <summary>Equivalent to: <c>ip link set dev NAME up</c>.</summary>
    void SetUp(int index);

    /// <summary>Deletes a link (its routes and proxy entries go with it). Equivalent to: <c>ip link del dev NAME</c>.</summary>
    bool DeleteLink(int index);

    /// <summary>Equivalent to: <c>sysctl -n net.ipv4.conf.NAME.rp_filter</c>.</summary>
    int GetRpFilter(string linkName);

    /// <summary>Equivalent to: <c>sysctl -w net.ipv4.conf.NAME.rp_filter=N</c>.</summary>
    void SetRpFilter(string linkName, int mode);

    /// <summary>Equivalent to: <c>sysctl -n net.ipv4.ip_forward</c>.</summary>
    bool GetIpForward();

    /// <summary>Equivalent to: <c>sysctl -w net.ipv4.ip_forward=1</c>.</summary>
    void SetIpForward(bool on);

    /// <summary>Equivalent to: <c>ip route replace ...</c>.</summary>
    void ReplaceRoute(RouteEntry route);

    /// <summary>Equivalent to: <c>ip route del ...</c>.</summary>
    bool DeleteRoute(RouteEntry route);

    /// <summary>Adds a proxy entry, or re-marks an existing one with the entry's protocol. Equivalent to: <c>ip neigh add proxy ADDR dev IF protocol P</c>.</summary>
    void AddProxy(NeighbourEntry entry);

    /// <summary>Equivalent to: <c>ip neigh del proxy ADDR dev IF</c>.</summary>
    bool DeleteProxy(NeighbourEntry entry);

    /// <summary>
    /// Broadcasts a gratuitous ARP for <paramref name="address"/> with <paramref name="mac"/> on the
    /// interface, so that neighbours re-point their cache entries at once.
    /// Equivalent to: <c>arping -U -c 1 -I IF ADDR</c> and <c>arping -A -c 1 -I IF ADDR</c>.
    /// </summary>
    void AnnounceAddress(int interfaceIndex, PhysicalAddress mac, IPAddress address);
}
