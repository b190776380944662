using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// An in-memory kernel with the semantics the reconciler depends on, as Linux has them: classic
/// ipip links unique by (local, remote) (EEXIST), routes keyed by (dst, len, table, tos, metric) and
/// refused on a missing (ENODEV) or down (ENETDOWN) link, a link going down or away taking its
/// routes and proxy entries with it, a second proxy add re-marking the entry's protocol, an alias
/// set in a second step after create (and the link removed if that fails, as the library does).
/// <see cref="Fault"/> makes any operation fail with an errno, as a <see cref="NetlinkException"/>
/// named after its ip equivalent (an <see cref="IOException"/> for sysctls). <see cref="Render"/>
/// shows it as ip-style text, one object a line.
/// </summary>
internal sealed class FakeKernel : IHomeAgentKernel
{
    public const int DefaultRpFilter = 2; // what systemd sets for new links on Debian

    private readonly SortedDictionary<int, FakeLink> _links = [];
    private readonly List<RouteEntry> _routes = [];
    private readonly List<NeighbourEntry> _proxies = [];
    private int _nextIndex = 1;

    public sealed class FakeLink
    {
        public int Index { get; init; }

        public string Name { get; set; } = "";

        public string? Kind { get; init; }

        public IpipParameters? Ipip { get; set; }

        public int Mtu { get; set; } = 1500;

        public bool Up { get; set; }

        public string? Alias { get; set; }

        public int RpFilter { get; set; } = DefaultRpFilter;

        public PhysicalAddress? Mac { get; init; }
    }

    public bool IpForward { get; set; }

    /// <summary>Every mutation, as its ip/sysctl equivalent, in order (reads are not listed).</summary>
    public List<string> Operations { get; } = [];

    /// <summary>Gratuitous ARPs sent: (interface, address, MAC).</summary>
    public List<(int Index, IPAddress Address, PhysicalAddress Mac)> Announcements { get; } = [];

    /// <summary>Given an operation (as its ip equivalent), the errno to fail it with, or null.</summary>
    public Func<string, int?>? Fault { get; set; }

    public IReadOnlyDictionary<int, FakeLink> Links => _links;

    // ---- set-up helpers: what an administrator (or a test) does, not counted as operations ----

    public int AddEthernet(string name, string mac, bool up = true) => AddRaw(new FakeLink { Index = _nextIndex++, Name = name, Kind = "veth", Up = up, Mac = PhysicalAddress.Parse(mac) });

    public int AddRaw(FakeLink link)
    {
        _nextIndex = Math.Max(_nextIndex, link.Index + 1);
        _links.Add(link.Index, link);
        return link.Index;
    }

    public int IndexOf(string name) => _links.Values.Single(l => l.Name == name).Index;

    public void AdminRoute(RouteEntry r) => _routes.Add(r);

    public void AdminProxy(NeighbourEntry e) => _proxies.Add(e);

    /// <summary>Someone else sets a link down: the kernel flushes its routes.</summary>
    public void AdminSetDown(int index)
    {
        _links[index].Up = false;
        _routes.RemoveAll(r => r.OutputInterface == index);
    }

    public void AdminDeleteRoute(Predicate<RouteEntry> match) => _routes.RemoveAll(match);

    public void AdminDeleteProxy(Predicate<NeighbourEntry> match) => _proxies.RemoveAll(match);

    public void AdminDeleteLink(int index) => RemoveLink(index);

    // ---- IHomeAgentKernel ----

    public IReadOnlyList<Link> ListLinks()
    {
        Check("ip -d link show");
        return [.. _links.Values.Select(l => new Link
        {
            Index = l.Index,
            Name = l.Name,
            Kind = l.Kind,
            Ipip = l.Ipip,
            Mtu = l.Mtu,
            Flags = l.Up ? IFF_UP : 0,
            Alias = l.Alias,
            HardwareAddress = l.Mac,
            DeviceType = l.Kind == "ipip" ? (ushort)768 : (ushort)1,
        })];
    }

    public IReadOnlyList<RouteEntry> ListRoutes()
    {
        Check("ip route show table main");
        return [.. _routes.Where(r => r.Table == RT_TABLE_MAIN).Select(r => r with { Scope = r.EffectiveScope })];
    }

    public IReadOnlyList<NeighbourEntry> ListProxies()
    {
        Check("ip neigh show proxy");
        return [.. _proxies];
    }

    public int AddIpip(string name, IpipParameters parameters, int mtu, string alias)
    {
        string op = $"ip link add {name} mtu {mtu} type ipip {parameters.ToIpArguments()}";
        Mutate(op);
        if (_links.Values.Any(l => l.Name == name))
        {
            throw new NetlinkException(op, Errno.EEXIST);
        }

        CheckEndpointsFree(op, parameters, except: null);
        var link = new FakeLink { Index = _nextIndex++, Name = name, Kind = "ipip", Ipip = parameters, Mtu = mtu };
        _links.Add(link.Index, link);
        string aliasOp = $"ip link set dev {name} alias \"{alias}\"";
        try
        {
            Mutate(aliasOp);
        }
        catch
        {
            RemoveLink(link.Index);
            throw;
        }

        link.Alias = alias;
        return link.Index;
    }

    public void ChangeIpip(int index, IpipParameters parameters)
    {
        string op = $"ip link set dev {NameOf(index)} type ipip {parameters.ToIpArguments()}";
        Mutate(op);
        FakeLink l = Get(op, index);
        if (l.Kind != "ipip")
        {
            throw new NetlinkException(op, Errno.EINVAL);
        }

        CheckEndpointsFree(op, parameters, except: index);
        l.Ipip = parameters;
    }

    public void SetMtu(int index, int mtu)
    {
        string op = $"ip link set dev {NameOf(index)} mtu {mtu}";
        Mutate(op);
        Get(op, index).Mtu = mtu;
    }

    public void SetUp(int index)
    {
        string op = $"ip link set dev {NameOf(index)} up";
        Mutate(op);
        Get(op, index).Up = true;
    }

    public bool DeleteLink(int index)
    {
        Mutate($"ip link del dev {NameOf(index)}");
        return RemoveLink(index);
    }

    public int GetRpFilter(string linkName)
    {
        string op = $"sysctl -n net.ipv4.conf.{linkName}.rp_filter";
        CheckSysctl(op);
        return SysctlLink(op, linkName).RpFilter;
    }

    public void SetRpFilter(string linkName, int mode)
    {
        string op = $"sysctl -w net.ipv4.conf.{linkName}.rp_filter={mode}";
        Operations.Add(op);
        CheckSysctl(op);
        SysctlLink(op, linkName).RpFilter = mode;
    }

    public bool GetIpForward()
    {
        CheckSysctl("sysctl -n net.ipv4.ip_forward");
        return IpForward;
    }

    public void SetIpForward(bool on)
    {
        string op = $"sysctl -w net.ipv4.ip_forward={(on ? 1 : 0)}";
        Operations.Add(op);
        CheckSysctl(op);
        IpForward = on;
    }

    public void ReplaceRoute(RouteEntry route)
    {
        string op = $"ip route replace {route.ToIpArguments()}";
        Mutate(op);
        if (route.OutputInterface is not { } oif || !_links.TryGetValue(oif, out FakeLink? l))
        {
            throw new NetlinkException(op, Errno.ENODEV);
        }

        if (!l.Up)
        {
            throw new NetlinkException(op, Errno.ENETDOWN, "Nexthop device is not up");
        }

        _routes.RemoveAll(r => SameKey(r, route));
        _routes.Add(route);
    }

    public bool DeleteRoute(RouteEntry route)
    {
        Mutate($"ip route del {route.ToIpArguments()}");
        int i = _routes.FindIndex(r => SameKey(r, route) &&
                                       (route.OutputInterface is null || r.OutputInterface == route.OutputInterface) &&
                                       (route.Protocol == 0 || r.Protocol == route.Protocol));
        if (i < 0)
        {
            return false;
        }

        _routes.RemoveAt(i);
        return true;
    }

    public void AddProxy(NeighbourEntry entry)
    {
        string op = $"ip neigh add {entry.ToIpArguments()}";
        Mutate(op);
        if (!_links.ContainsKey(entry.InterfaceIndex))
        {
            throw new NetlinkException(op, Errno.ENODEV);
        }

        int i = _proxies.FindIndex(p => p.Destination.Equals(entry.Destination) && p.InterfaceIndex == entry.InterfaceIndex);
        if (i >= 0)
        {
            // pneigh: a second add is a no-op, except that it sets the protocol when one is given.
            if (entry.Protocol is not null)
            {
                _proxies[i] = _proxies[i] with { Protocol = entry.Protocol };
            }

            return;
        }

        _proxies.Add(new NeighbourEntry { InterfaceIndex = entry.InterfaceIndex, Destination = entry.Destination, Proxy = true, Protocol = entry.Protocol });
    }

    public bool DeleteProxy(NeighbourEntry entry)
    {
        Mutate($"ip neigh del {entry.ToIpArguments()}");
        return _proxies.RemoveAll(p => p.Destination.Equals(entry.Destination) && p.InterfaceIndex == entry.InterfaceIndex) > 0;
    }

    public void AnnounceAddress(int interfaceIndex, PhysicalAddress mac, IPAddress address)
    {
        string op = $"arping -U -A -c 1 -I {NameOf(interfaceIndex)} {address}";
        Operations.Add(op);
        if (Fault?.Invoke(op) is { } errno)
        {
            throw new IOException($"sendto(AF_PACKET) for {op}: {Errno.Name(errno)}");
        }

        Announcements.Add((interfaceIndex, address, mac));
    }

    // ---- rendering ----

    /// <summary>Every object, ip-style, sorted: "link ...", "route ...", "proxy ...".</summary>
    public List<string> Render() => [.. RenderLinks(_ => true).Concat(RenderRoutes(_ => true)).Concat(RenderProxies(_ => true)).Order(StringComparer.Ordinal)];

    /// <summary>Only objects carrying our markers (both link markers; protocol 77 through our links; protocol 77 proxies).</summary>
    public List<string> RenderMarked()
    {
        HashSet<int> ours = [.. _links.Values.Where(IsMarked).Select(l => l.Index)];
        return [.. RenderLinks(IsMarked)
            .Concat(RenderRoutes(r => r.Protocol == Ownership.RouteProtocol && r.OutputInterface is { } o && ours.Contains(o)))
            .Concat(RenderProxies(p => p.Protocol == Ownership.NeighbourProtocol))
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>Everything <see cref="RenderMarked"/> leaves out: the administrator's objects.</summary>
    public List<string> RenderUnmarked() => [.. Render().Except(RenderMarked())];

    public static bool IsMarked(FakeLink l) =>
        l.Name.StartsWith(Ownership.LinkNamePrefix, StringComparison.Ordinal) && l.Alias?.StartsWith(Ownership.LinkAliasPrefix, StringComparison.Ordinal) == true;

    /// <summary>How a tunnel of the desired state must look in <see cref="Render"/>: written from the specification, not from the reconciler.</summary>
    public static List<string> Expected(HomeAgentState? s, string lanName = "lan0")
    {
        if (s is null)
        {
            return [];
        }

        var lines = new List<string>();
        foreach (HomeAgentTunnel t in s.Tunnels.Values)
        {
            string name = HomeAgentTunnel.LinkNameFor(t.BindingId);
            lines.Add($"link {name} ipip local {s.OuterAddress} remote {t.CareOfAddress} ttl 64 pmtudisc mtu {s.TunnelMtu} up alias \"mobilityagents:{t.BindingId}\" rp_filter 1");
            lines.Add($"route {t.HomeAddress}/32 dev {name} proto 77");
            lines.Add($"proxy {t.HomeAddress} dev {lanName} proto 77");
        }

        return [.. lines.Order(StringComparer.Ordinal)];
    }

    private IEnumerable<string> RenderLinks(Func<FakeLink, bool> which) => _links.Values.Where(which).Select(l =>
        string.Create(CultureInfo.InvariantCulture,
            $"link {l.Name} {l.Kind}{(l.Ipip is { } p ? " " + p.ToIpArguments() : "")} mtu {l.Mtu} {(l.Up ? "up" : "down")}{(l.Alias is null ? "" : $" alias \"{l.Alias}\"")}{(l.Kind == "ipip" ? $" rp_filter {l.RpFilter}" : "")}"));

    private IEnumerable<string> RenderRoutes(Func<RouteEntry, bool> which) => _routes.Where(which).Select(r =>
        string.Create(CultureInfo.InvariantCulture,
            $"route {r.Destination}/{r.DestinationPrefixLength}{(r.Gateway is null ? "" : $" via {r.Gateway}")} dev {NameOf(r.OutputInterface ?? 0)} proto {r.Protocol}{(r.Metric is { } m ? $" metric {m}" : "")}{(r.Table != RT_TABLE_MAIN ? $" table {r.Table}" : "")}"));

    private IEnumerable<string> RenderProxies(Func<NeighbourEntry, bool> which) => _proxies.Where(which).Select(p =>
        $"proxy {p.Destination} dev {NameOf(p.InterfaceIndex)}{(p.Protocol is { } pr ? $" proto {pr}" : "")}");

    // ---- internals ----

    private static bool SameKey(RouteEntry a, RouteEntry b) =>
        a.Destination.Equals(b.Destination) && a.DestinationPrefixLength == b.DestinationPrefixLength &&
        a.Table == b.Table && a.Tos == b.Tos && (a.Metric ?? 0) == (b.Metric ?? 0);

    private void CheckEndpointsFree(string op, IpipParameters p, int? except)
    {
        if (_links.Values.Any(l => l.Index != except && l.Kind == "ipip" && l.Ipip is { External: false } q &&
                                   Equals(q.Local, p.Local) && Equals(q.Remote, p.Remote)))
        {
            throw new NetlinkException(op, Errno.EEXIST, "a tunnel with these endpoints exists");
        }
    }

    private bool RemoveLink(int index)
    {
        if (!_links.Remove(index))
        {
            return false;
        }

        _routes.RemoveAll(r => r.OutputInterface == index);
        _proxies.RemoveAll(p => p.InterfaceIndex == index);
        return true;
    }

    private FakeLink Get(string op, int index) =>
        _links.TryGetValue(index, out FakeLink? l) ? l : throw new NetlinkException(op, Errno.ENODEV);

    private FakeLink SysctlLink(string op, string name) =>
        _links.Values.FirstOrDefault(l => l.Name == name) ?? throw new IOException($"{op}: No such file or directory");

    private string NameOf(int index) => _links.TryGetValue(index, out FakeLink? l) ? l.Name : $"(ifindex {index})";

    private void Check(string op)
    {
        if (Fault?.Invoke(op) is { } errno)
        {
            throw new NetlinkException(op, errno);
        }
    }

    private void CheckSysctl(string op)
    {
        if (Fault?.Invoke(op) is { } errno)
        {
            throw new IOException($"{op}: {Errno.Name(errno)}");
        }
    }

    private void Mutate(string op)
    {
        Operations.Add(op);
        Check(op);
    }
}
