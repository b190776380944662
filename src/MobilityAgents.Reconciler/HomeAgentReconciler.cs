using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Reconciler;

/// <summary>
/// Programs the home agent's kernel (the recipe's gateway side, steps 1-5) to match a desired
/// <see cref="HomeAgentState"/>: per binding a classic ipip link (local = the gateway's outer
/// address, remote = the care-of address, ttl 64, pmtudisc, MTU, up, rp_filter 1), the home
/// address routed into it, and a proxy-ARP entry for it on the LAN; ip_forward on while any binding
/// exists; a gratuitous ARP on the LAN when a binding starts.
/// <para>
/// <see cref="Apply"/> reads the kernel, diffs, and changes only what differs: new objects first,
/// removals last; a moved laptop's link is re-pointed in place (same ifindex, no teardown gap).
/// Errors are collected, not fatal: a binding that cannot be completed is rolled back and left out
/// of the returned state; the others go on. Every object carries a marker
/// (<see cref="Ownership"/>): links named "ma..." with alias "mobilityagents:ID", routes with
/// protocol 77 through those links, proxy entries with protocol 77. Only marked objects are ever
/// changed or removed, and every marked object not in the desired state is removed, so a restart
/// (or <see cref="Sweep()"/>) cleans up after a crash.
/// </para>
/// <para>
/// Reverse-path filtering: a classic ipip link only accepts outer packets from its remote (the
/// registered care-of address), and with rp_filter strict (1) on it the kernel then drops inner
/// packets whose source is not routed back into that same link, i.e. anything but the binding's
/// home address. A laptop can send through its tunnel only as itself.
/// </para>
/// Thread-safe: calls are serialised.
/// </summary>
public sealed class HomeAgentReconciler
{
    /// <summary>net.ipv4.conf.LINK.rp_filter of every tunnel: strict (see the class remarks on reverse-path filtering).</summary>
    public const int StrictRpFilter = 1;

    private readonly IHomeAgentKernel _kernel;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly SelfDeletions _self = new();
    private volatile HomeAgentState? _desired;
    private volatile HomeAgentReached? _reached;
    private volatile int _lanIndex;

    public HomeAgentReconciler(IHomeAgentKernel kernel, ILogger<HomeAgentReconciler>? logger = null)
    {
        _kernel = kernel ?? throw new ArgumentNullException(nameof(kernel));
        _log = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The desired state of the last <see cref="Apply"/> (null before the first, or after Apply(null)).</summary>
    public HomeAgentState? Desired => _desired;

    /// <summary>What the last <see cref="Apply"/> reached (null before the first).</summary>
    public HomeAgentReached? LastReached => _reached;

    /// <summary>
    /// Makes the kernel match <paramref name="desired"/> (null: remove every marked object) and
    /// returns what was actually reached, with every error. Safe to call with an unchanged state:
    /// it re-reads the kernel and repairs whatever someone else changed.
    /// </summary>
    public HomeAgentReached Apply(HomeAgentState? desired)
    {
        lock (_lock)
        {
            return ApplyLocked(desired);
        }
    }

    private HomeAgentReached ApplyLocked(HomeAgentState? desired)
    {
        _desired = desired;
        HomeAgentReached reached = new Pass(this).Apply(desired);
        _self.Publish(() => _reached = reached);
        return reached;
    }

    /// <summary>
    /// Removes every marked object the last applied desired state does not own (before any
    /// <see cref="Apply"/>: every marked object). Apply does the same as its last step; Sweep is
    /// that step alone, for a start-up clean-up before the desired state is known.
    /// </summary>
    public HomeAgentSweep Sweep() => Sweep(_desired);

    /// <summary>Removes every marked object that no tunnel of <paramref name="owners"/> owns (null: every marked object).</summary>
    public HomeAgentSweep Sweep(HomeAgentState? owners)
    {
        lock (_lock)
        {
            HomeAgentSweep sweep = new Pass(this).Sweep(owners);
            _self.Publish(() => { });
            return sweep;
        }
    }

    /// <summary>
    /// Applies the last desired state again: the self-healing hook, for when
    /// <see cref="Concerns"/> says someone else deleted one of our objects. Rate limiting is the
    /// caller's (see <see cref="ReassertRateLimiter"/>). Null if nothing was ever applied.
    /// </summary>
    public HomeAgentReached? Reassert(string reason)
    {
        lock (_lock)
        {
            if (_reached is null)
            {
                return null;
            }

            Log.Reasserting(_log, reason);
            return ApplyLocked(_desired);
        }
    }

    /// <summary>
    /// True if a <see cref="RouteMonitor"/> event reports the deletion of an object the last
    /// <see cref="Apply"/> put in place (a tunnel link, a home-address route, a proxy entry), or an
    /// event overflow: then <see cref="Reassert"/> should run (rate limited). Our own removals of
    /// bindings no longer desired do not count, even when the event is read while that Apply still
    /// runs (the deletions an Apply makes are expected before it makes them). Listen to <see cref="RouteMonitorGroups.Links"/>,
    /// <see cref="RouteMonitorGroups.Routes"/> and <see cref="RouteMonitorGroups.Neighbours"/>.
    /// </summary>
    public bool Concerns(RouteEvent routeEvent)
    {
        ArgumentNullException.ThrowIfNull(routeEvent);
        return _self.Judge(routeEvent, ConcernsReached);
    }

    private bool ConcernsReached(RouteEvent routeEvent)
    {
        HomeAgentReached? reached = _reached;
        if (reached?.State is not { } state)
        {
            return false;
        }

        switch (routeEvent)
        {
            case ResyncRequired:
                return true;
            case LinkEvent { Deleted: true } e:
                return reached.Links.Values.Any(l => l.Index == e.Link.Index && l.Name == e.Link.Name);
            case RouteChangeEvent { Deleted: true } e:
                RouteEntry r = e.Route;
                return r.Protocol == Ownership.RouteProtocol && r.Table == RT_TABLE_MAIN && r.DestinationPrefixLength == 32 &&
                       state.Tunnels.Values.Any(t => t.HomeAddress.Equals(r.Destination) &&
                                                     reached.Links.TryGetValue(t.BindingId, out TunnelLink? l) && l.Index == r.OutputInterface);
            case NeighbourEvent { Deleted: true, Neighbour.Proxy: true } e:
                return e.Neighbour.InterfaceIndex == _lanIndex && state.Tunnels.Values.Any(t => t.HomeAddress.Equals(e.Neighbour.Destination));
            default:
                return false;
        }
    }

    /// <summary>A link of ours: both markers, the name prefix and the alias prefix (a name alone could be anyone's).</summary>
    public static bool IsOurs(Link link)
    {
        ArgumentNullException.ThrowIfNull(link);
        return link.Name.StartsWith(Ownership.LinkNamePrefix, StringComparison.Ordinal) &&
               link.Alias is { } a && a.StartsWith(Ownership.LinkAliasPrefix, StringComparison.Ordinal);
    }

    /// <summary>The ipip parameters of a tunnel: local = outer address, remote = care-of, ttl 64, pmtudisc.</summary>
    public static IpipParameters TunnelParameters(IPAddress outerAddress, IPAddress careOfAddress) => new()
    {
        Local = outerAddress,
        Remote = careOfAddress,
        Ttl = HomeAgentState.TunnelTtl,
        Tos = 0,
        PathMtuDiscovery = true,
    };

    private static string? BindingIdOf(Link link) => link.Alias?[Ownership.LinkAliasPrefix.Length..];

    private static bool IsClassicIpip(Link link) => link.Kind == "ipip" && link.Ipip is { External: false };

    /// <summary>Every parameter we set, except the remote (the care-of address, which a move changes).</summary>
    private static bool MatchesExceptRemote(IpipParameters? have, IpipParameters want) =>
        have is { External: false, UnderlyingLinkIndex: null, FwMark: null, EncapType: null } &&
        Equals(have.Local, want.Local) && have.Ttl == want.Ttl && have.Tos == want.Tos &&
        have.PathMtuDiscovery == want.PathMtuDiscovery;

    private static bool Matches(IpipParameters? have, IpipParameters want) =>
        MatchesExceptRemote(have, want) && Equals(have!.Remote, want.Remote);

    private static bool IsHomeRouteKey(RouteEntry r, IPAddress home) =>
        r.Destination.Equals(home) && r.DestinationPrefixLength == 32 && r.Table == RT_TABLE_MAIN && r.Tos == 0 && (r.Metric ?? 0) == 0;

    private static bool IsUnicastIpv4(IPAddress a)
    {
        if (a.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        byte[] b = a.GetAddressBytes();
        return b[0] is not (0 or 127) && b[0] < 224 && !a.Equals(IPAddress.Broadcast);
    }

    private static bool IsKernelError(Exception e) =>
        e is NetlinkException or NetlinkSocketException or NetlinkParseException or IOException
            or UnauthorizedAccessException or ArgumentException or FormatException;

    private static string Mac(PhysicalAddress a) =>
        string.Join(':', a.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    /// <summary>One Apply or Sweep: the kernel snapshot it works from, and what it did.</summary>
    private sealed class Pass(HomeAgentReconciler owner)
    {
        private readonly IHomeAgentKernel _k = owner._kernel;
        private readonly ILogger _log = owner._log;
        private readonly List<ReconcileError> _errors = [];
        private readonly List<string> _removed = [];
        private readonly HashSet<(IPAddress, int)> _goneProxies = [];
        private List<Link> _links = [];
        private Dictionary<string, Link> _byName = new(StringComparer.Ordinal);
        private Dictionary<int, Link> _byIndex = [];
        private Dictionary<string, Link> _ours = new(StringComparer.Ordinal);
        private List<RouteEntry> _routes = [];
        private List<NeighbourEntry> _proxies = [];

        public HomeAgentReached Apply(HomeAgentState? desired)
        {
            if (!TrySnapshot())
            {
                owner._lanIndex = 0;
                return Finish(desired, [], false);
            }

            Link? lan = null;
            List<HomeAgentTunnel> accepted = [];
            if (desired is not null)
            {
                lan = _byName.GetValueOrDefault(desired.LanInterface);
                if (lan is null)
                {
                    Error(null, $"ip link show dev {desired.LanInterface}: no such LAN interface: no binding can be put in place");
                }
                else
                {
                    accepted = Validate(desired);
                }
            }

            owner._lanIndex = lan?.Index ?? 0;
            bool forwarding = EnsureForwarding(accepted.Count > 0);
            Link? shared = desired?.SharedLink is { } sharedName ? _byName.GetValueOrDefault(sharedName) : null;
            List<HomeAgentTunnel> sharedTunnels = [.. accepted.Where(t => t.Shared)];
            accepted.RemoveAll(t => t.Shared);

            // Classic ipip links are told apart by (local, remote): a link being created or moved onto
            // the (local, remote) of a link about to be removed would get EEXIST, and a desired
            // binding's name held by a stale link of ours cannot be fixed in place. Those go first.
            var handled = new HashSet<string>(StringComparer.Ordinal);
            foreach (HomeAgentTunnel t in accepted)
            {
                handled.Add(t.LinkName);
            }

            if (shared is not null)
            {
                handled.Add(shared.Name); // the userspace datapath's TUN: its own, never removed here
            }

            foreach (HomeAgentTunnel t in accepted)
            {
                if (_ours.TryGetValue(t.LinkName, out Link? same) && (BindingIdOf(same) != t.BindingId || !IsClassicIpip(same)))
                {
                    DeleteLink(same, t.BindingId);
                    _byName.Remove(same.Name);
                }

                foreach (Link l in _ours.Values.Where(l => !handled.Contains(l.Name) && IsClassicIpip(l) &&
                                                           Equals(l.Ipip!.Local, desired!.OuterAddress) && Equals(l.Ipip.Remote, t.CareOfAddress)).ToList())
                {
                    DeleteLink(l, BindingIdOf(l));
                }
            }

            var reached = new List<(HomeAgentTunnel Tunnel, TunnelLink Link)>();
            foreach (HomeAgentTunnel t in desired is null ? [] : OrderMoves(accepted, desired))
            {
                if (EnsureTunnel(t, desired!, lan!) is { } r)
                {
                    reached.Add(r);
                }
            }

            if (sharedTunnels.Count > 0)
            {
                if (shared is null)
                {
                    foreach (HomeAgentTunnel t in sharedTunnels)
                    {
                        Error(t.BindingId, $"ip link show dev {desired!.SharedLink}: the userspace datapath's link is missing: the binding cannot be carried");
                    }
                }
                else if (EnsureSharedLink(shared, sharedTunnels[0]) is null)
                {
                    foreach (HomeAgentTunnel t in sharedTunnels)
                    {
                        if (EnsureSharedTunnel(t, shared, lan!) is { } r)
                        {
                            reached.Add(r);
                        }
                    }
                }
            }

            reached.Sort((a, b) => string.CompareOrdinal(a.Tunnel.BindingId, b.Tunnel.BindingId));

            RemoveOrphans(
                keepLinks: handled,
                keepRoutes: [.. reached.Select(r => (r.Tunnel.HomeAddress, r.Link.Index))],
                routeLinks: [.. reached.Select(r => r.Link.Index), .. shared is null ? [] : new[] { shared.Index }],
                keepProxies: lan is null ? [] : [.. reached.Select(r => (r.Tunnel.HomeAddress, lan.Index))]);

            return Finish(desired, reached, forwarding);
        }

        public HomeAgentSweep Sweep(HomeAgentState? owners)
        {
            if (TrySnapshot())
            {
                var keepLinks = new HashSet<string>(StringComparer.Ordinal);
                var keepRoutes = new HashSet<(IPAddress, int)>();
                var routeLinks = new HashSet<int>();
                var keepProxies = new HashSet<(IPAddress, int)>();
                int lan = owners is not null && _byName.TryGetValue(owners.LanInterface, out Link? l) ? l.Index : 0;
                if (owners?.SharedLink is { } sn && _byName.TryGetValue(sn, out Link? sl))
                {
                    keepLinks.Add(sl.Name);
                    routeLinks.Add(sl.Index);
                    foreach (HomeAgentTunnel t in owners.Tunnels.Values.Where(t => t.Shared))
                    {
                        keepRoutes.Add((t.HomeAddress, sl.Index));
                        keepProxies.Add((t.HomeAddress, lan));
                    }
                }

                foreach (HomeAgentTunnel t in owners?.Tunnels.Values.Where(t => !t.Shared) ?? Enumerable.Empty<HomeAgentTunnel>())
                {
                    if (_ours.TryGetValue(t.LinkName, out Link? link) && BindingIdOf(link) == t.BindingId)
                    {
                        keepLinks.Add(link.Name);
                        keepRoutes.Add((t.HomeAddress, link.Index));
                        routeLinks.Add(link.Index);
                        keepProxies.Add((t.HomeAddress, lan));
                    }
                }

                RemoveOrphans(keepLinks, keepRoutes, routeLinks, keepProxies);
            }

            Log.Swept(_log, _removed.Count, _errors.Count);
            return new HomeAgentSweep([.. _removed], [.. _errors]);
        }

        private HomeAgentReached Finish(HomeAgentState? desired, List<(HomeAgentTunnel Tunnel, TunnelLink Link)> reached, bool forwarding)
        {
            HomeAgentState? state = desired?.WithTunnels(reached.Select(r => r.Tunnel));
            var links = reached.ToImmutableSortedDictionary(r => r.Tunnel.BindingId, r => r.Link, StringComparer.Ordinal);
            Log.Applied(_log, reached.Count, desired?.Tunnels.Count ?? 0, _errors.Count);
            return new HomeAgentReached(state, links, forwarding, [.. _errors]);
        }

        private bool TrySnapshot()
        {
            try
            {
                _links = [.. _k.ListLinks()];
                _routes = [.. _k.ListRoutes()];
                _proxies = [.. _k.ListProxies()];
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error(null, e.Message);
                return false;
            }

            _byName = _links.GroupBy(l => l.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
            _byIndex = _links.GroupBy(l => l.Index).ToDictionary(g => g.Key, g => g.First());
            _ours = _links.Where(IsOurs).ToDictionary(l => l.Name, StringComparer.Ordinal);
            return true;
        }

        /// <summary>
        /// The tunnels that can be built, in binding-id order. Refused (with an error naming the
        /// other binding): an address that is not unicast IPv4; a home address already carried by
        /// another binding; a care-of address already the remote of another binding's tunnel (the
        /// kernel tells classic ipip links apart only by their outer addresses: the binding whose
        /// link already points there keeps it); a link-name collision.
        /// </summary>
        private List<HomeAgentTunnel> Validate(HomeAgentState desired)
        {
            var homes = new Dictionary<IPAddress, string>();
            var careOfs = new Dictionary<IPAddress, string>();
            var names = new Dictionary<string, string>(StringComparer.Ordinal);
            var accepted = new List<HomeAgentTunnel>();
            bool PointsAlready(HomeAgentTunnel t) =>
                _ours.TryGetValue(t.LinkName, out Link? l) && BindingIdOf(l) == t.BindingId && Equals(l.Ipip?.Remote, t.CareOfAddress);

            foreach (HomeAgentTunnel t in desired.Tunnels.Values.OrderBy(t => PointsAlready(t) ? 0 : 1).ThenBy(t => t.BindingId, StringComparer.Ordinal))
            {
                string? refusal =
                    t.BindingId.Length == 0 ? "empty binding id"
                    : !IsUnicastIpv4(t.HomeAddress) ? $"home address {t.HomeAddress} is not a unicast IPv4 address"
                    : !IsUnicastIpv4(t.CareOfAddress) ? $"care-of address {t.CareOfAddress} is not a unicast IPv4 address"
                    : t.CareOfAddress.Equals(desired.OuterAddress) ? $"care-of address {t.CareOfAddress} is the gateway's own outer address"
                    : homes.TryGetValue(t.HomeAddress, out string? h) ? $"home address {t.HomeAddress} is already carried by binding {h}"
                    : t.Encapsulation == Encapsulation.Ipip && careOfs.TryGetValue(t.CareOfAddress, out string? c) ? $"care-of address {t.CareOfAddress} is already the remote of binding {c}'s tunnel (ipip tunnels are told apart only by their outer addresses)"
                    : !t.Shared && names.TryGetValue(t.LinkName, out string? n) ? $"link name {t.LinkName} collides with binding {n}'s"
                    : null;
                if (refusal is not null)
                {
                    Log.BindingRefused(_log, t.BindingId, refusal);
                    _errors.Add(new ReconcileError(t.BindingId, "refused: " + refusal));
                    continue;
                }

                homes[t.HomeAddress] = t.BindingId;
                if (t.Encapsulation == Encapsulation.Ipip)
                {
                    careOfs[t.CareOfAddress] = t.BindingId;
                }

                if (!t.Shared)
                {
                    names[t.LinkName] = t.BindingId;
                }
                accepted.Add(t);
            }

            accepted.Sort((a, b) => string.CompareOrdinal(a.BindingId, b.BindingId));
            return accepted;
        }

        /// <summary>ip_forward on while any binding is desired; never turned off (the gateway may forward for others too).</summary>
        private bool EnsureForwarding(bool needed)
        {
            try
            {
                bool on = _k.GetIpForward();
                if (needed && !on)
                {
                    Mutation("sysctl -w net.ipv4.ip_forward=1");
                    _k.SetIpForward(true);
                    on = true;
                }

                return on;
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error(null, e.Message);
                return false;
            }
        }

        /// <summary>
        /// Brings one tunnel to its desired state, creating or repairing what is missing, and returns
        /// it as reached, or rolls its objects back and returns null. Order: link (down), parameters,
        /// MTU, rp_filter, up, route, proxy entry. rp_filter is strict (1) before the link comes up:
        /// the link only accepts outer packets from the registered care-of address, and strict
        /// reverse-path filtering then drops inner packets whose source is not routed back into it,
        /// so what the tunnel delivers must come from the binding's home address.
        /// </summary>
        private (HomeAgentTunnel Tunnel, TunnelLink Link)? EnsureTunnel(HomeAgentTunnel t, HomeAgentState desired, Link lan)
        {
            string name = t.LinkName;
            IpipParameters want = TunnelParameters(desired.OuterAddress, t.CareOfAddress);
            bool created = false;
            Link? link = _ours.GetValueOrDefault(name);
            if (link is null)
            {
                if (_byName.TryGetValue(name, out Link? foreign))
                {
                    Error(t.BindingId, $"ip link add {name}: a link named {name} (ifindex {foreign.Index}) exists without the alias {t.LinkAlias}: not ours, left alone; remove it (ip link del dev {name}) to let the binding in");
                    return null;
                }

                Mutation($"ip link add {name} mtu {desired.TunnelMtu} type ipip {want.ToIpArguments()}; ip link set dev {name} alias \"{t.LinkAlias}\"");
                int index;
                try
                {
                    index = _k.AddIpip(name, want, desired.TunnelMtu, t.LinkAlias);
                }
                catch (Exception e) when (IsKernelError(e))
                {
                    Error(t.BindingId, e.Message);
                    Log.BindingNotReached(_log, t.BindingId, e.Message);
                    return null;
                }

                created = true;
                link = new Link { Index = index, Name = name, Kind = "ipip", Ipip = want, Mtu = desired.TunnelMtu, Alias = t.LinkAlias };
                _ours[name] = link;
            }

            IPAddress? remote = link.Ipip?.Remote;
            string? failure = null;
            if (!Matches(link.Ipip, want))
            {
                // A move (or a new outer address): re-point the link in place, same ifindex, no gap.
                string cmd = $"ip link set dev {name} type ipip {want.ToIpArguments()}";
                Mutation(cmd);
                try
                {
                    _k.ChangeIpip(link.Index, want);
                    remote = t.CareOfAddress;
                    _ours[name] = link with { Ipip = want };
                }
                catch (Exception e) when (IsKernelError(e))
                {
                    Error(t.BindingId, e.Message);
                    // Still pointing at the old care-of address: a complete tunnel, reported as such.
                    if (!MatchesExceptRemote(link.Ipip, want))
                    {
                        failure = e.Message;
                    }
                }
            }

            if (remote is null && failure is null)
            {
                failure = $"link {name} has no remote address"; // parked to break a cycle of moves, and the re-point failed
            }

            failure ??= Step(t, link.Mtu != desired.TunnelMtu, $"ip link set dev {name} mtu {desired.TunnelMtu}", () => _k.SetMtu(link.Index, desired.TunnelMtu));
            failure ??= EnsureRpFilter(t, name);
            failure ??= Step(t, !link.IsUp, $"ip link set dev {name} up", () => _k.SetUp(link.Index));
            failure ??= EnsureRoute(t, name, link.Index, created);
            bool proxyAdded = false;
            if (failure is null)
            {
                (failure, proxyAdded) = EnsureProxy(t, lan);
            }

            if (failure is not null)
            {
                Rollback(t, link, lan);
                Log.BindingNotReached(_log, t.BindingId, failure);
                return null;
            }

            if (created || proxyAdded)
            {
                Announce(t, lan);
            }

            return (t with { CareOfAddress = remote! }, new TunnelLink(name, link.Index));
        }

        /// <summary>The binding's proxy-ARP entry on the LAN: (the error message or null, whether it was added now).</summary>
        private (string? Failure, bool Added) EnsureProxy(HomeAgentTunnel t, Link lan)
        {
            bool present = !_goneProxies.Contains((t.HomeAddress, lan.Index)) && _proxies.Any(p =>
                p.Destination.Equals(t.HomeAddress) && p.InterfaceIndex == lan.Index && p.Protocol == Ownership.NeighbourProtocol);
            string? failure = Step(t, !present, $"ip neigh add proxy {t.HomeAddress} dev {lan.Name} protocol {Ownership.NeighbourProtocol}", () => _k.AddProxy(ProxyEntry(t.HomeAddress, lan.Index)));
            return (failure, !present && failure is null);
        }

        /// <summary>A gratuitous ARP for the home address with the LAN's MAC, so LAN hosts re-point their entries at once.</summary>
        private void Announce(HomeAgentTunnel t, Link lan)
        {
            if (lan.HardwareAddress is not { } mac || mac.GetAddressBytes().Length != 6)
            {
                return;
            }

            Log.GratuitousArp(_log, lan.Name, t.HomeAddress.ToString(), Mac(mac));
            try
            {
                _k.AnnounceAddress(lan.Index, mac, t.HomeAddress);
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error(t.BindingId, e.Message); // the tunnel works; LAN hosts learn the new MAC when their entries expire
            }
        }

        /// <summary>
        /// The userspace datapath's link, once per pass: strict rp_filter (the datapath checks each
        /// packet's inner source against its sender; the kernel checks again that it is routed back
        /// into this link) and up. Returns the error message, or null.
        /// </summary>
        private string? EnsureSharedLink(Link shared, HomeAgentTunnel first) =>
            EnsureRpFilter(first, shared.Name) ?? Step(first, !shared.IsUp, $"ip link set dev {shared.Name} up", () => _k.SetUp(shared.Index));

        /// <summary>A tunnel carried by the userspace datapath: its route into the shared link and its proxy entry.</summary>
        private (HomeAgentTunnel Tunnel, TunnelLink Link)? EnsureSharedTunnel(HomeAgentTunnel t, Link shared, Link lan)
        {
            string? failure = EnsureRoute(t, shared.Name, shared.Index, false);
            bool proxyAdded = false;
            if (failure is null)
            {
                (failure, proxyAdded) = EnsureProxy(t, lan);
            }

            if (failure is not null)
            {
                DeleteProxy(ProxyEntry(t.HomeAddress, lan.Index), lan.Name, t.BindingId);
                Log.BindingNotReached(_log, t.BindingId, failure);
                return null; // a route it may have got is removed as an orphan below
            }

            if (proxyAdded)
            {
                Announce(t, lan);
            }

            return (t, new TunnelLink(shared.Name, shared.Index));
        }

        private string? EnsureRpFilter(HomeAgentTunnel t, string name)
        {
            try
            {
                if (_k.GetRpFilter(name) != StrictRpFilter)
                {
                    Mutation($"sysctl -w net.ipv4.conf.{name}.rp_filter={StrictRpFilter}");
                    _k.SetRpFilter(name, StrictRpFilter);
                }

                return null;
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error(t.BindingId, e.Message);
                return e.Message;
            }
        }

        private string? EnsureRoute(HomeAgentTunnel t, string name, int index, bool created)
        {
            HashSet<int> ourIndexes = [.. _ours.Values.Select(l => l.Index)];
            if (!created && _routes.Any(r => IsHomeRouteKey(r, t.HomeAddress) && r.OutputInterface == index && r.Protocol == Ownership.RouteProtocol))
            {
                return null;
            }

            // `ip route replace` also takes the route over from a stale binding of ours with the same
            // home address (add before delete: no gap); an administrator's route is never replaced.
            RouteEntry? foreign = _routes.FirstOrDefault(r => IsHomeRouteKey(r, t.HomeAddress) &&
                !(r.Protocol == Ownership.RouteProtocol && r.OutputInterface is { } oif && ourIndexes.Contains(oif)));
            if (foreign is not null)
            {
                string msg = $"ip route replace {t.HomeAddress}/32 dev {name} proto {Ownership.RouteProtocol}: a route {foreign.ToIpArguments()} is not ours: left alone";
                Error(t.BindingId, msg);
                return msg;
            }

            return Step(t, true, $"ip route replace {t.HomeAddress}/32 dev {name} proto {Ownership.RouteProtocol}", () => _k.ReplaceRoute(HomeRoute(t.HomeAddress, index)));
        }

        /// <summary>Runs one mutation if <paramref name="needed"/>, logging it first; returns the error message, or null.</summary>
        private string? Step(HomeAgentTunnel t, bool needed, string command, Action action)
        {
            if (!needed)
            {
                return null;
            }

            Mutation(command);
            try
            {
                action();
                return null;
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error(t.BindingId, e.Message);
                return e.Message;
            }
        }

        /// <summary>Removes what a binding that could not be completed has: its proxy entry, then its link (and the link's routes).</summary>
        private void Rollback(HomeAgentTunnel t, Link link, Link lan)
        {
            DeleteProxy(ProxyEntry(t.HomeAddress, lan.Index), lan.Name, t.BindingId);
            DeleteLink(link, t.BindingId);
        }

        /// <summary>
        /// Deletes every marked object not kept: proxy entries first (the LAN stops sending us that
        /// traffic), then stale routes through kept links, then links (their routes go with them).
        /// </summary>
        private void RemoveOrphans(HashSet<string> keepLinks, HashSet<(IPAddress, int)> keepRoutes, HashSet<int> routeLinks, HashSet<(IPAddress, int)> keepProxies)
        {
            foreach (NeighbourEntry p in _proxies.Where(p => p.Protocol == Ownership.NeighbourProtocol))
            {
                if (!keepProxies.Contains((p.Destination, p.InterfaceIndex)) && !_goneProxies.Contains((p.Destination, p.InterfaceIndex)))
                {
                    DeleteProxy(ProxyEntry(p.Destination, p.InterfaceIndex), _byIndex.GetValueOrDefault(p.InterfaceIndex)?.Name ?? $"(ifindex {p.InterfaceIndex})", null);
                }
            }

            foreach (RouteEntry r in _routes.Where(r => r.Protocol == Ownership.RouteProtocol && r.OutputInterface is { } oif && routeLinks.Contains(oif)))
            {
                if (!(r.DestinationPrefixLength == 32 && keepRoutes.Contains((r.Destination, r.OutputInterface!.Value))))
                {
                    string cmd = $"ip route del {r.Destination}/{r.DestinationPrefixLength} dev {_byIndex.GetValueOrDefault(r.OutputInterface!.Value)?.Name} proto {r.Protocol}";
                    RouteEntry gone = r;
                    owner._self.Expect(e => e is RouteChangeEvent { Deleted: true } d && d.Route.Destination.Equals(gone.Destination) &&
                                            d.Route.DestinationPrefixLength == gone.DestinationPrefixLength && d.Route.OutputInterface == gone.OutputInterface);
                    Delete(cmd, null, () => _k.DeleteRoute(new RouteEntry
                    {
                        Destination = r.Destination,
                        DestinationPrefixLength = r.DestinationPrefixLength,
                        Table = r.Table,
                        Protocol = r.Protocol,
                        Tos = r.Tos,
                        Metric = r.Metric,
                        OutputInterface = r.OutputInterface,
                    }));
                }
            }

            foreach (Link l in _ours.Values.Where(l => !keepLinks.Contains(l.Name)).ToList())
            {
                DeleteLink(l, BindingIdOf(l));
            }
        }

        private void DeleteProxy(NeighbourEntry entry, string dev, string? bindingId)
        {
            if (_goneProxies.Add((entry.Destination, entry.InterfaceIndex)))
            {
                owner._self.Expect(e => e is NeighbourEvent { Deleted: true, Neighbour.Proxy: true } d &&
                                        d.Neighbour.Destination.Equals(entry.Destination) && d.Neighbour.InterfaceIndex == entry.InterfaceIndex);
                Delete($"ip neigh del proxy {entry.Destination} dev {dev}", bindingId, () => _k.DeleteProxy(entry));
            }
        }

        private void DeleteLink(Link link, string? bindingId)
        {
            // The link, and what the kernel takes with it: its routes and neighbour entries.
            int index = link.Index;
            owner._self.Expect(e => e switch
            {
                LinkEvent { Deleted: true } d => d.Link.Index == index,
                RouteChangeEvent { Deleted: true } d => d.Route.OutputInterface == index,
                NeighbourEvent { Deleted: true } d => d.Neighbour.InterfaceIndex == index,
                _ => false,
            });
            if (Delete($"ip link del dev {link.Name}", bindingId, () => _k.DeleteLink(link.Index)))
            {
                // The kernel took the link's routes and proxy entries with it.
                _routes.RemoveAll(r => r.OutputInterface == link.Index);
                _proxies.RemoveAll(p => p.InterfaceIndex == link.Index);
            }

            _ours.Remove(link.Name);
        }

        /// <summary>
        /// The order to bring tunnels to their desired state in. Classic ipip links are unique by
        /// (local, remote), so a link cannot be re-pointed (or created) at a care-of address another
        /// desired binding's link still points at: that one moves first. A cycle (two laptops
        /// swapping addresses in one Apply) is broken by parking one link at remote "any" for the
        /// moment between two re-points, which keeps every link in place.
        /// </summary>
        private IEnumerable<HomeAgentTunnel> OrderMoves(List<HomeAgentTunnel> accepted, HomeAgentState desired)
        {
            // Which pending binding's link currently holds each remote at our local address.
            var pending = new List<HomeAgentTunnel>(accepted);
            HomeAgentTunnel? Holder(HomeAgentTunnel t) => pending.FirstOrDefault(o =>
                o.BindingId != t.BindingId && _ours.TryGetValue(o.LinkName, out Link? l) && l.Ipip is { } p &&
                Equals(p.Local, desired.OuterAddress) && Equals(p.Remote, t.CareOfAddress));

            while (pending.Count > 0)
            {
                HomeAgentTunnel? next = pending.FirstOrDefault(t => Holder(t) is null);
                if (next is null)
                {
                    // Every pending binding waits for another: park the first one's link.
                    next = pending[0];
                    Link link = _ours[Holder(next)!.LinkName];
                    HomeAgentTunnel holder = Holder(next)!;
                    IpipParameters parked = TunnelParameters(desired.OuterAddress, IPAddress.Any) with { Remote = null };
                    Mutation($"ip link set dev {link.Name} type ipip {parked.ToIpArguments()}");
                    try
                    {
                        _k.ChangeIpip(link.Index, parked);
                        _ours[link.Name] = link with { Ipip = parked };
                    }
                    catch (Exception e) when (IsKernelError(e))
                    {
                        Error(holder.BindingId, e.Message); // `next` will then fail with EEXIST and be reported
                    }
                }

                pending.Remove(next);
                yield return next;
            }
        }

        /// <summary>Runs a delete, logging it first; true unless it failed (already gone counts as done).</summary>
        private bool Delete(string command, string? bindingId, Func<bool> action)
        {
            Mutation(command);
            try
            {
                if (action())
                {
                    _removed.Add(command);
                }

                return true;
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error(bindingId, e.Message);
                return false;
            }
        }

        private void Mutation(string command) => Log.KernelMutation(_log, command);

        private void Error(string? bindingId, string message)
        {
            var e = new ReconcileError(bindingId, message);
            Log.OperationFailed(_log, e);
            _errors.Add(e);
        }

        private static RouteEntry HomeRoute(IPAddress home, int index) => new()
        {
            Destination = home,
            DestinationPrefixLength = 32,
            Table = RT_TABLE_MAIN,
            Protocol = Ownership.RouteProtocol,
            OutputInterface = index,
        };

        private static NeighbourEntry ProxyEntry(IPAddress home, int lanIndex) => new()
        {
            InterfaceIndex = lanIndex,
            Destination = home,
            Proxy = true,
            Protocol = Ownership.NeighbourProtocol,
        };
    }
}
