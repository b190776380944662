using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler;

/// <summary>The real kernel: one rtnetlink handle in the home agent's network namespace.</summary>
[SupportedOSPlatform("linux")]
public sealed class NetlinkHomeAgentKernel : IHomeAgentKernel, IDisposable
{
    private readonly RouteNetlink _h;
    private readonly bool _ownsHandle;

    /// <summary>Uses <paramref name="handle"/>; it is disposed with this object only if <paramref name="ownsHandle"/>.</summary>
    public NetlinkHomeAgentKernel(RouteNetlink handle, bool ownsHandle = false)
    {
        _h = handle ?? throw new ArgumentNullException(nameof(handle));
        _ownsHandle = ownsHandle;
    }

    /// <summary>Opens a handle of its own in <paramref name="netns"/> (default: the process's namespace).</summary>
    public static NetlinkHomeAgentKernel Open(NetworkNamespace? netns = null) => new(RouteNetlink.Open(netns), ownsHandle: true);

    /// <summary>The namespace programmed.</summary>
    public NetworkNamespace Namespace => _h.Namespace;

    public IReadOnlyList<Link> ListLinks() => _h.Links.List();

    public IReadOnlyList<RouteEntry> ListRoutes() => _h.Routes.List(RtnetlinkConstants.RT_TABLE_MAIN);

    public IReadOnlyList<NeighbourEntry> ListProxies() => _h.Neighbours.List(proxy: true);

    public int AddIpip(string name, IpipParameters parameters, int mtu, string alias)
    {
        _h.Links.AddIpip(name, parameters, mtu, alias);
        return _h.Links.IndexOf(name);
    }

    public void ChangeIpip(int index, IpipParameters parameters) => _h.Links.ChangeIpip(index, parameters);

    public void SetMtu(int index, int mtu) => _h.Links.SetMtu(index, mtu);

    public void SetUp(int index) => _h.Links.SetUp(index);

    public bool DeleteLink(int index) => _h.Links.Delete(index);

    public int GetRpFilter(string linkName) => Sysctl.GetRpFilter(_h.Namespace, linkName);

    public void SetRpFilter(string linkName, int mode) => Sysctl.SetRpFilter(_h.Namespace, linkName, mode);

    public bool GetIpForward() => Sysctl.GetIpForward(_h.Namespace);

    public void SetIpForward(bool on) => Sysctl.SetIpForward(_h.Namespace, on);

    public void ReplaceRoute(RouteEntry route) => _h.Routes.Replace(route);

    public bool DeleteRoute(RouteEntry route) => _h.Routes.Delete(route);

    public void AddProxy(NeighbourEntry entry) => _h.Neighbours.Add(entry);

    public bool DeleteProxy(NeighbourEntry entry) => _h.Neighbours.Delete(entry);

    public void AnnounceAddress(int interfaceIndex, PhysicalAddress mac, IPAddress address) =>
        GratuitousArp.Announce(_h.Namespace, interfaceIndex, mac, address);

    public void Dispose()
    {
        if (_ownsHandle)
        {
            _h.Dispose();
        }
    }
}
