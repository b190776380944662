using System.Collections.Immutable;
using System.ComponentModel;
using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Reconciler;

/// <summary>
/// Programs the mobile agent's (the laptop's) kernel, the recipe's laptop side, to match a desired
/// <see cref="MobileAgentState"/>, in the namespace of the <see cref="RouteNetlink"/> handle:
/// <list type="number">
/// <item>the mirror classic ipip link (local = care-of, remote = home agent, ttl 64, pmtudisc, MTU,
/// alias <see cref="MobileAgentState.TunnelAlias"/>, rp_filter loose, up);</item>
/// <item>the home address /32 on it (IFA_PROTO 77 where the kernel keeps it; older kernels ignore it);</item>
/// <item><c>default dev TUNNEL table MobileTable proto 77</c> and
/// <c>ip rule add from HOME lookup MobileTable priority 10000 protocol 77</c>;</item>
/// <item>with <see cref="MobileAgentState.NeedsFwMarkRule"/>:
/// <c>ip rule add fwmark BIT/BIT lookup MobileTable priority 10010 protocol 77</c>; with
/// <see cref="MobileAgentState.NeedsNftables"/>: the nftables table <c>ip mobilityagents</c> (with
/// TcpPorts, a route chain on output marking <c>tcp dport {PORTS}</c>; always a srcnat chain on
/// postrouting <c>oifname TUNNEL ip saddr != HOME snat to HOME</c>);</item>
/// <item>with <see cref="MobileAgentState.HomePrefixThroughTunnel"/>:
/// <c>HOME_AGENT/32 via VISITED_GATEWAY proto 77</c> first, then
/// <c>HOME_PREFIX dev TUNNEL src HOME proto 77</c>.</item>
/// </list>
/// <para>
/// <see cref="Apply"/> reads the kernel, diffs, and changes only what differs, logging every change
/// as its <c>ip</c>/<c>nft</c>/<c>sysctl</c> equivalent first. Adds come before deletes. A move (new
/// care-of address, new visited gateway) changes the link's local end in place (same ifindex: the
/// address, routes and rules stay) and re-pins the home agent's route with <c>ip route replace</c>:
/// no teardown gap. If any add step fails, the steps this Apply made are undone in reverse order
/// and nothing is removed: the kernel is left as it was, and the returned state says what it
/// holds. Failed removals are reported and retried by the next Apply.
/// </para>
/// <para>
/// Ownership: only marked objects are changed or removed, and every marked object the desired
/// state does not own is removed, so the first Apply after a restart adopts what matches and
/// sweeps the rest. Ours are: links with alias exactly <see cref="MobileAgentState.TunnelAlias"/>;
/// rules with protocol 77 in priorities 10000-10999; routes with protocol 77 in
/// <see cref="Ownership.MobileTable"/>, and in the main table those through our links or with a
/// gateway to a /32 (the pin route; the home agent's protocol-77 routes are /32s through its own
/// links, never with a gateway); the nftables table <c>ip mobilityagents</c>. An object of someone
/// else's in the way of one of ours (a link with our name but not our alias, a route with the key of
/// ours) makes Apply refuse, naming it, before any change.
/// </para>
/// <para>
/// A home agent and a mobile agent must not share a network namespace: the home agent's
/// reconciler takes every "ma*" link with a "mobilityagents:" alias for one of its own.
/// </para>
/// Thread-safe: calls are serialised.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class MobileAgentReconciler
{
    private readonly RouteNetlink _h;
    private readonly MobileTunnelDevice _device;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly SelfDeletions _self = new();
    private volatile MobileAgentState? _desired;
    private volatile MobileAgentReached? _reached;

    /// <summary>A reconciler for the namespace of <paramref name="handle"/>; its tunnel is always a classic ipip link.</summary>
    public MobileAgentReconciler(RouteNetlink handle, ILogger<MobileAgentReconciler>? logger = null)
        : this(handle, MobileTunnelDevice.Ipip, logger)
    {
    }

    /// <summary>The seam: tests on a host without the ipip module pass a veth stand-in here (rules, routes and nftables only).</summary>
    internal MobileAgentReconciler(RouteNetlink handle, MobileTunnelDevice device, ILogger? logger)
    {
        _h = handle ?? throw new ArgumentNullException(nameof(handle));
        _device = device ?? throw new ArgumentNullException(nameof(device));
        _log = logger ?? NullLogger.Instance;
        Nftables.ReserveDescriptor(); // while the process has few descriptors open
    }

    /// <summary>The desired state of the last <see cref="Apply"/> (null before the first, after Apply(null) or Sweep).</summary>
    public MobileAgentState? Desired => _desired;

    /// <summary>What the last <see cref="Apply"/> reached (null before the first).</summary>
    public MobileAgentReached? LastReached => _reached;

    /// <summary>
    /// Makes the kernel match <paramref name="desired"/> (null: remove every marked object) and
    /// returns what was actually reached, with every error. The first call after a start adopts
    /// matching objects (a restart with the same state changes nothing) and removes marked ones that
    /// do not match. Safe to call with an unchanged state: it re-reads the kernel and repairs.
    /// </summary>
    public MobileAgentReached Apply(MobileAgentState? desired)
    {
        lock (_lock)
        {
            return ApplyLocked(desired, out _);
        }
    }

    /// <summary>
    /// Removes every marked object (the same as Apply(null)), for a clean-up when there is no
    /// binding to restore, or at shutdown. At start-up with a binding, call <see cref="Apply"/>
    /// with it instead: that adopts what matches without a gap.
    /// </summary>
    public MobileAgentSweep Sweep()
    {
        lock (_lock)
        {
            MobileAgentReached r = ApplyLocked(null, out ImmutableArray<string> removed);
            MobileLog.Swept(_log, removed.Length, r.Errors.Length);
            return new MobileAgentSweep(removed, r.Errors);
        }
    }

    /// <summary>
    /// Applies the last desired state again: the self-healing hook, for when <see cref="Concerns"/>
    /// says someone else deleted one of our objects. Rate limiting is the caller's
    /// (<see cref="ReassertRateLimiter"/>). Null if nothing was ever applied.
    /// </summary>
    public MobileAgentReached? Reassert(string reason)
    {
        lock (_lock)
        {
            if (_reached is null)
            {
                return null;
            }

            MobileLog.Reasserting(_log, reason);
            return ApplyLocked(_desired, out _);
        }
    }

    /// <summary>
    /// True if a <see cref="RouteMonitor"/> event reports the deletion of an object the last Apply
    /// put in place (the tunnel link, its home address, one of our rules or routes), or an event
    /// overflow: then <see cref="Reassert"/> should run (rate limited). Our own removals of objects
    /// no longer desired do not count, even when the event is read while that Apply still runs (the
    /// deletions an Apply makes are expected before it makes them). Listen to links, addresses,
    /// routes and rules.
    /// </summary>
    public bool Concerns(RouteEvent routeEvent)
    {
        ArgumentNullException.ThrowIfNull(routeEvent);
        return _self.Judge(routeEvent, ConcernsReached);
    }

    private bool ConcernsReached(RouteEvent routeEvent)
    {
        MobileAgentReached? reached = _reached;
        if (reached?.State is not { } st || reached.TunnelIndex is not { } index)
        {
            return false;
        }

        return routeEvent switch
        {
            ResyncRequired => true,
            LinkEvent { Deleted: true } e => e.Link.Index == index,
            AddressEvent { Deleted: true } e => e.Address.InterfaceIndex == index && e.Address.Local.Equals(st.HomeAddress),
            RuleEvent { Deleted: true } e => DesiredRules(st).Any(r => RuleMatches(e.Rule, r)),
            RouteChangeEvent { Deleted: true } e => e.Route.Protocol == Ownership.RouteProtocol &&
                DesiredRoutes(st, index).Any(r => SameKey(e.Route, r.Route)),
            _ => false,
        };
    }

    /// <summary>The mobile agent's tunnel link: alias exactly <see cref="MobileAgentState.TunnelAlias"/>.</summary>
    public static bool IsOurLink(Link link)
    {
        ArgumentNullException.ThrowIfNull(link);
        return link.Alias == MobileAgentState.TunnelAlias;
    }

    /// <summary>A rule of ours: protocol 77, priority in 10000-10999.</summary>
    public static bool IsOurRule(RuleEntry rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return rule.Protocol == Ownership.RouteProtocol &&
               rule.Priority is >= Ownership.RulePriorityFirst and <= Ownership.RulePriorityLast;
    }

    private MobileAgentReached ApplyLocked(MobileAgentState? desired, out ImmutableArray<string> removed)
    {
        var pass = new Pass(this);
        MobileAgentReached reached = pass.Apply(desired, _reached?.State);
        removed = [.. pass.Removed];
        _desired = desired;
        _self.Publish(() => _reached = reached);
        return reached;
    }

    // --- the objects of a state -------------------------------------------------------------

    private static RuleEntry HomeRule(MobileAgentState s) => new()
    {
        Source = s.HomeAddress,
        SourcePrefixLength = 32,
        Table = Ownership.MobileTable,
        Priority = MobileAgentState.HomeAddressRulePriority,
        Protocol = Ownership.RouteProtocol,
    };

    private static RuleEntry FwMarkRule() => new()
    {
        FwMark = Ownership.FwMarkBit,
        FwMask = Ownership.FwMarkBit,
        Table = Ownership.MobileTable,
        Priority = MobileAgentState.FwMarkRulePriority,
        Protocol = Ownership.RouteProtocol,
    };

    private static List<RuleEntry> DesiredRules(MobileAgentState s) => s.NeedsFwMarkRule ? [HomeRule(s), FwMarkRule()] : [HomeRule(s)];

    /// <summary>One route of a state: the entry (with the tunnel's index), how to write it, and whether a kernel route is it.</summary>
    private sealed record DesiredRoute(RouteEntry Route, string Command, Func<RouteEntry, bool> Matches);

    /// <summary>The routes of a state, in the order they are installed: the table's default, the pin, then the prefix.</summary>
    private static List<DesiredRoute> DesiredRoutes(MobileAgentState s, int tunnelIndex)
    {
        string dev = s.TunnelName;
        var list = new List<DesiredRoute>();
        var def = new RouteEntry
        {
            Table = Ownership.MobileTable,
            Protocol = Ownership.RouteProtocol,
            OutputInterface = tunnelIndex,
        };
        list.Add(new DesiredRoute(def, $"default dev {dev} table {Ownership.MobileTable} proto {Ownership.RouteProtocol}",
            r => IsPlainUnicast(r) && r.Gateway is null && r.PreferredSource is null && r.OutputInterface == tunnelIndex));
        if (s.HomePrefixThroughTunnel && s.VisitedGateway is { } gw)
        {
            var pin = new RouteEntry
            {
                Destination = s.HomeAgentAddress,
                DestinationPrefixLength = 32,
                Table = RT_TABLE_MAIN,
                Protocol = Ownership.RouteProtocol,
                Gateway = gw,
            };
            list.Add(new DesiredRoute(pin, $"{s.HomeAgentAddress}/32 via {gw} proto {Ownership.RouteProtocol}",
                r => IsPlainUnicast(r) && gw.Equals(r.Gateway) && r.PreferredSource is null));

            IPAddress home = s.HomeAddress;
            var prefix = new RouteEntry
            {
                Destination = s.HomePrefix.BaseAddress,
                DestinationPrefixLength = (byte)s.HomePrefix.PrefixLength,
                Table = RT_TABLE_MAIN,
                Protocol = Ownership.RouteProtocol,
                OutputInterface = tunnelIndex,
                PreferredSource = home,
            };
            list.Add(new DesiredRoute(prefix, $"{s.HomePrefix} dev {dev} src {home} proto {Ownership.RouteProtocol}",
                r => IsPlainUnicast(r) && r.Gateway is null && home.Equals(r.PreferredSource) && r.OutputInterface == tunnelIndex));
        }

        return list;
    }

    private static bool IsPlainUnicast(RouteEntry r) =>
        r.Type == RTN_UNICAST && r.Protocol == Ownership.RouteProtocol && r.EncapDestination is null;

    /// <summary>What the kernel tells routes apart by in a table (and what <c>ip route replace</c> replaces): destination, tos, metric.</summary>
    private static bool SameKey(RouteEntry a, RouteEntry b) =>
        a.Table == b.Table && a.Destination.Equals(b.Destination) && a.DestinationPrefixLength == b.DestinationPrefixLength &&
        a.Tos == b.Tos && (a.Metric ?? 0) == (b.Metric ?? 0);

    private static bool RuleMatches(RuleEntry have, RuleEntry want) =>
        have.Family == AF_INET && Equals(have.Source, want.Source) &&
        (have.Source is null || have.SourcePrefixLength == want.SourcePrefixLength) &&
        have.Destination is null && have.FwMark == want.FwMark && have.FwMask == want.FwMask &&
        have.InputInterface is null && have.OutputInterface is null && have.Table == want.Table &&
        have.Priority == want.Priority && have.Protocol == want.Protocol && have.Action == FR_ACT_TO_TBL &&
        !have.Invert && have.Tos == 0 && have.SuppressPrefixLength is null;

    /// <summary>A route as <c>ip route del</c> needs it: the key and the next hop of the kernel's entry.</summary>
    private static RouteEntry ForDelete(RouteEntry r) => new()
    {
        Destination = r.Destination,
        DestinationPrefixLength = r.DestinationPrefixLength,
        Table = r.Table,
        Protocol = r.Protocol,
        Tos = r.Tos,
        Type = r.Type,
        Metric = r.Metric,
        OutputInterface = r.OutputInterface,
        Gateway = r.Gateway,
    };

    /// <summary>A kernel route written back as ip arguments with the link's name.</summary>
    private static string Describe(RouteEntry r, Func<int, string> nameOf)
    {
        var s = new StringBuilder();
        s.Append(r.DestinationPrefixLength == 0 && r.Destination.Equals(IPAddress.Any) ? "default" : $"{r.Destination}/{r.DestinationPrefixLength}");
        if (r.Gateway is not null)
        {
            s.Append(" via ").Append(r.Gateway);
        }

        if (r.OutputInterface is { } oif)
        {
            s.Append(" dev ").Append(nameOf(oif));
        }

        if (r.PreferredSource is not null)
        {
            s.Append(" src ").Append(r.PreferredSource);
        }

        if (r.Table != RT_TABLE_MAIN)
        {
            s.Append(CultureInfo.InvariantCulture, $" table {r.Table}");
        }

        if (r.Metric is { } m and not 0)
        {
            s.Append(CultureInfo.InvariantCulture, $" metric {m}");
        }

        s.Append(CultureInfo.InvariantCulture, $" proto {r.Protocol}");
        return s.ToString();
    }

    private static string Describe(RuleEntry r)
    {
        var s = new StringBuilder();
        s.Append(r.Source is null ? "from all" : r.SourcePrefixLength == 32 ? $"from {r.Source}" : $"from {r.Source}/{r.SourcePrefixLength}");
        if (r.Destination is not null)
        {
            s.Append(CultureInfo.InvariantCulture, $" to {r.Destination}/{r.DestinationPrefixLength}");
        }

        if (r.FwMark is { } mark)
        {
            s.Append(CultureInfo.InvariantCulture, $" fwmark 0x{mark:x}");
            if (r.FwMask is { } mask)
            {
                s.Append(CultureInfo.InvariantCulture, $"/0x{mask:x}");
            }
        }

        s.Append(CultureInfo.InvariantCulture, $" lookup {r.Table} priority {r.Priority} protocol {r.Protocol}");
        return s.ToString();
    }

    private static bool IsKernelError(Exception e) =>
        e is NetlinkException or NetlinkSocketException or NetlinkParseException or NftablesException or IOException
            or UnauthorizedAccessException or ArgumentException or FormatException or System.Text.Json.JsonException;

    private static MobileAgentError ErrorOf(string command, Exception e) => e switch
    {
        NetlinkException n => new MobileAgentError(command, n.Errno,
            $"{command}: {n.ErrnoName} ({new Win32Exception(n.Errno).Message})" + (string.IsNullOrEmpty(n.ExtAckMessage) ? "" : $": {n.ExtAckMessage}")),
        NetlinkSocketException s => new MobileAgentError(command, s.Errno, $"{command}: {s.Message}"),
        NftablesException x => new MobileAgentError(command, null, $"{command}: {x.NftError}"),
        _ => new MobileAgentError(command, null, $"{command}: {e.Message}"),
    };

    /// <summary>One kernel change, how to write it, and how to undo it (null: nothing to undo, or not undoable).</summary>
    private sealed record Step(string Command, Action Do, string? UndoCommand = null, Action? Undo = null);

    /// <summary>What the steps of one plan share while they run: the tunnel's index once it exists.</summary>
    private sealed class Ctx
    {
        public int Index;
    }

    /// <summary>The marked objects (and the few unmarked ones that matter) as one Apply found them.</summary>
    private sealed class Snapshot
    {
        public List<Link> Links = [];
        public Dictionary<string, Link> ByName = new(StringComparer.Ordinal);
        public Dictionary<int, Link> ByIndex = [];
        public List<Link> Ours = [];
        public List<RuleEntry> OurRules = [];
        public List<RouteEntry> Main = [];
        public List<RouteEntry> Mobile = [];
        public Dictionary<int, List<AddressEntry>> Addresses = [];
        public Dictionary<string, int> RpFilter = new(StringComparer.Ordinal);

        /// <summary>Our nftables table as listed (null: absent or unknown).</summary>
        public JsonArray? Nft;

        /// <summary>Why the nftables table could not be listed (null: it was).</summary>
        public NftablesException? NftListError;

        public string NameOf(int index) => ByIndex.TryGetValue(index, out Link? l) ? l.Name : $"(ifindex {index})";
    }

    /// <summary>One Apply: the kernel snapshot it works from, and what it did.</summary>
    private sealed class Pass(MobileAgentReconciler owner)
    {
        private readonly RouteNetlink _h = owner._h;
        private MobileTunnelDevice _device = owner._device;
        private readonly ILogger _log = owner._log;
        private readonly List<MobileAgentError> _errors = [];
        private Snapshot _s = new();

        public List<string> Removed { get; } = [];

        public MobileAgentReached Apply(MobileAgentState? desired, MobileAgentState? previous)
        {
            if (desired is { UserspaceTunnel: true })
            {
                _device = MobileTunnelDevice.UserspaceTun;
            }

            if (!TrySnapshot(desired))
            {
                return Finish(null, null);
            }

            var ctx = new Ctx();
            HashSet<int> preDeleted = [];
            if (desired is not null)
            {
                var refusals = new List<MobileAgentError>();
                List<Step>? adds = null;
                IReadOnlyList<string> problems = desired.Validate();
                if (problems.Count > 0)
                {
                    refusals.AddRange(problems.Select(p => new MobileAgentError("validate", null, "invalid desired state: " + p)));
                }
                else
                {
                    adds = PlanAdds(desired, ctx, refusals, preDeleted);
                }

                if (refusals.Count > 0)
                {
                    foreach (MobileAgentError r in refusals)
                    {
                        MobileLog.Refused(_log, r.Message);
                        _errors.Add(r);
                    }

                    return Failed(previous, rolledBack: true, []);
                }

                var done = new List<Step>();
                foreach (Step step in adds!)
                {
                    if (!Run(step.Command, step.Do, out string? failure))
                    {
                        bool undone = Rollback(done, failure!);
                        return Failed(previous, undone, preDeleted);
                    }

                    done.Add(step);
                }
            }

            foreach (Step step in PlanRemovals(desired, ctx, preDeleted))
            {
                if (Run(step.Command, step.Do, out _))
                {
                    Removed.Add(step.Command);
                }
            }

            return Finish(desired, desired is null ? null : ctx.Index);
        }

        private MobileAgentReached Finish(MobileAgentState? state, int? index)
        {
            MobileLog.Applied(_log, state?.ToString() ?? "(none)", _errors.Count);
            return new MobileAgentReached(state, index, [.. _errors]);
        }

        /// <summary>
        /// After a refusal or a rolled-back failure the kernel is as the snapshot found it (but for
        /// links deleted to make room, which cannot be undone): it holds the previously reached
        /// state if that state needs no change in the snapshot and its link was not one of those.
        /// </summary>
        private MobileAgentReached Failed(MobileAgentState? previous, bool rolledBack, HashSet<int> deleted)
        {
            if (rolledBack && previous is not null && previous.Validate().Count == 0)
            {
                var ctx = new Ctx();
                var refusals = new List<MobileAgentError>();
                if (PlanAdds(previous, ctx, refusals, []).Count == 0 && refusals.Count == 0 && !deleted.Contains(ctx.Index))
                {
                    return Finish(previous, ctx.Index);
                }
            }

            return Finish(null, null);
        }

        private bool Rollback(List<Step> done, string failure)
        {
            MobileLog.RollingBack(_log, done.Count, failure);
            bool ok = true;
            for (int i = done.Count - 1; i >= 0; i--)
            {
                if (done[i] is { UndoCommand: { } cmd, Undo: { } undo })
                {
                    ok &= Run(cmd, undo, out _);
                }
            }

            return ok;
        }

        // The deletions, each expected before it is made (see SelfDeletions).
        private void DeleteLink(int index)
        {
            // The link, and what the kernel takes with it: its addresses and routes.
            owner._self.Expect(e => e switch
            {
                LinkEvent { Deleted: true } d => d.Link.Index == index,
                AddressEvent { Deleted: true } d => d.Address.InterfaceIndex == index,
                RouteChangeEvent { Deleted: true } d => d.Route.OutputInterface == index,
                _ => false,
            });
            _h.Links.Delete(index);
        }

        private void DeleteAddress(AddressEntry a)
        {
            // The address, and the routes through its link that use it as their source.
            owner._self.Expect(e => e switch
            {
                AddressEvent { Deleted: true } d => d.Address.InterfaceIndex == a.InterfaceIndex && d.Address.Local.Equals(a.Local),
                RouteChangeEvent { Deleted: true } d => d.Route.OutputInterface == a.InterfaceIndex && a.Local.Equals(d.Route.PreferredSource),
                _ => false,
            });
            _h.Addresses.Delete(a);
        }

        private void DeleteRoute(RouteEntry r)
        {
            owner._self.Expect(e => e is RouteChangeEvent { Deleted: true } d && SameKey(d.Route, r));
            _h.Routes.Delete(r);
        }

        private void DeleteRule(RuleEntry r)
        {
            owner._self.Expect(e => e is RuleEvent { Deleted: true } d && d.Rule.Priority == r.Priority && d.Rule.Table == r.Table &&
                                    Equals(d.Rule.Source, r.Source) && d.Rule.FwMark == r.FwMark);
            _h.Rules.Delete(r);
        }

        private bool Run(string command, Action action, out string? failure)
        {
            MobileLog.KernelMutation(_log, command);
            try
            {
                action();
                failure = null;
                return true;
            }
            catch (Exception e) when (IsKernelError(e))
            {
                MobileAgentError error = ErrorOf(command, e);
                MobileLog.OperationFailed(_log, error);
                _errors.Add(error);
                failure = error.Message;
                return false;
            }
        }

        private bool TrySnapshot(MobileAgentState? desired)
        {
            var s = new Snapshot();
            try
            {
                s.Links = _h.Links.List();
                s.ByName = s.Links.GroupBy(l => l.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
                s.ByIndex = s.Links.GroupBy(l => l.Index).ToDictionary(g => g.Key, g => g.First());
                s.Ours = [.. s.Links.Where(IsOurLink)];
                s.OurRules = [.. _h.Rules.List().Where(IsOurRule)];
                s.Main = _h.Routes.List(RT_TABLE_MAIN);
                s.Mobile = _h.Routes.List(Ownership.MobileTable);
                foreach (Link l in s.Ours)
                {
                    s.Addresses[l.Index] = _h.Addresses.List(l.Index);
                }
            }
            catch (Exception e) when (IsKernelError(e))
            {
                Error("ip -d link show; ip rule show; ip route show table all; ip addr show", e);
                return false;
            }

            try
            {
                s.Nft = MobileNftTable.List(_h.Namespace);
            }
            catch (NftablesException e)
            {
                s.NftListError = e;
                if (!e.Unavailable && desired?.NeedsNftables == true)
                {
                    // Not fatal: the atomic replace below runs anyway and reports its own failure.
                    MobileLog.OperationFailed(_log, ErrorOf(e.Operation, e));
                }
            }

            _s = s;
            return true;
        }

        private void Error(string command, Exception e)
        {
            MobileAgentError error = ErrorOf(command, e);
            MobileLog.OperationFailed(_log, error);
            _errors.Add(error);
        }

        private int RpFilterOf(string name)
        {
            if (!_s.RpFilter.TryGetValue(name, out int v))
            {
                try
                {
                    v = Sysctl.GetRpFilter(_h.Namespace, name);
                }
                catch (Exception e) when (IsKernelError(e))
                {
                    v = -1; // unknown: set it
                }

                _s.RpFilter[name] = v;
            }

            return v;
        }

        /// <summary>
        /// The changes that bring the snapshot to <paramref name="d"/>'s objects, in order, each with
        /// its undo; nothing is run. Conflicts with objects that are not ours go to <paramref name="refusals"/>.
        /// <paramref name="ctx"/>.Index is the tunnel's index when it exists (set by the create step otherwise).
        /// </summary>
        private List<Step> PlanAdds(MobileAgentState d, Ctx ctx, List<MobileAgentError> refusals, HashSet<int> preDeleted)
        {
            var steps = new List<Step>();
            string name = d.TunnelName;
            IpipParameters want = d.TunnelParameters;
            Link? link = _s.Ours.FirstOrDefault(l => l.Name == name);
            if (link is null && _s.ByName.TryGetValue(name, out Link? foreign))
            {
                refusals.Add(new MobileAgentError($"ip link add {name}", Errno.EEXIST,
                    $"ip link add {name}: a link named {name} (ifindex {foreign.Index}, {foreign.Kind ?? "no kind"}) exists without the alias \"{MobileAgentState.TunnelAlias}\": not ours, left alone; remove or rename it, or choose another tunnel name"));
                return steps;
            }

            // Links that must go before ours can be made or moved: ours of another kind under our
            // name, and stale ones of ours on the endpoints ours needs (the kernel tells classic ipip
            // links apart by their endpoints: EEXIST). Not undoable; a tunnel rename is the only case
            // with a gap.
            foreach (Link l in _s.Ours)
            {
                if ((l.Name == name && !_device.IsKind(l)) || (l.Name != name && _device.Collides(l, want)))
                {
                    int index = l.Index;
                    steps.Add(new Step($"ip link del dev {l.Name}", () => DeleteLink(index)));
                    preDeleted.Add(index);
                    if (l.Name == name)
                    {
                        link = null;
                    }
                }
            }

            bool created = link is null;
            if (link is null)
            {
                steps.Add(new Step(
                    _device.CreateCommand(name, want, d.TunnelMtu, MobileAgentState.TunnelAlias),
                    () => ctx.Index = _device.Create(_h, name, want, d.TunnelMtu, MobileAgentState.TunnelAlias),
                    $"ip link del dev {name}",
                    () => DeleteLink(ctx.Index)));
            }
            else
            {
                ctx.Index = link.Index;
                Link l = link;
                if (!_device.Matches(l, want))
                {
                    IpipParameters? old = _device.ParametersOf(l);
                    steps.Add(new Step(
                        _device.ChangeCommand(name, want),
                        () => _device.Change(_h, l.Index, want),
                        old is null ? null : _device.ChangeCommand(name, old),
                        old is null ? null : () => _device.Change(_h, l.Index, old)));
                }

                if (l.Mtu != d.TunnelMtu)
                {
                    int oldMtu = l.Mtu;
                    steps.Add(new Step($"ip link set dev {name} mtu {d.TunnelMtu}", () => _h.Links.SetMtu(l.Index, d.TunnelMtu),
                        $"ip link set dev {name} mtu {oldMtu}", () => _h.Links.SetMtu(l.Index, oldMtu)));
                }
            }

            int rp = created ? -1 : RpFilterOf(name);
            if (rp != MobileAgentState.TunnelRpFilter)
            {
                steps.Add(new Step($"sysctl -w net.ipv4.conf.{name}.rp_filter={MobileAgentState.TunnelRpFilter}",
                    () => Sysctl.SetRpFilter(_h.Namespace, name, MobileAgentState.TunnelRpFilter),
                    rp is >= 0 and <= 2 ? $"sysctl -w net.ipv4.conf.{name}.rp_filter={rp}" : null,
                    rp is >= 0 and <= 2 ? () => Sysctl.SetRpFilter(_h.Namespace, name, rp) : null));
            }

            if (created || !link!.IsUp)
            {
                steps.Add(new Step($"ip link set dev {name} up", () => _h.Links.SetUp(ctx.Index),
                    created ? null : $"ip link set dev {name} down", created ? null : () => _h.Links.SetDown(ctx.Index)));
            }

            bool hasAddress = !created && _s.Addresses.TryGetValue(link!.Index, out List<AddressEntry>? addrs) &&
                              addrs.Any(a => a.Local.Equals(d.HomeAddress) && a.PrefixLength == 32 && a.Peer is null);
            if (!hasAddress)
            {
                AddressEntry Address() => new()
                {
                    InterfaceIndex = ctx.Index,
                    Local = d.HomeAddress,
                    PrefixLength = 32,
                    Protocol = Ownership.RouteProtocol,
                };
                steps.Add(new Step($"ip addr add {d.HomeAddress}/32 dev {name} proto {Ownership.RouteProtocol}", () => _h.Addresses.Add(Address()),
                    $"ip addr del {d.HomeAddress}/32 dev {name}", () => DeleteAddress(Address())));
            }

            // Routes: the table's default, the pin, the prefix (the pin before the prefix, so the
            // tunnel's outer packets never follow the prefix into the tunnel itself).
            foreach (DesiredRoute want0 in DesiredRoutes(d, created ? 0 : ctx.Index))
            {
                RouteEntry key = want0.Route;
                List<RouteEntry> table = key.Table == RT_TABLE_MAIN ? _s.Main : _s.Mobile;
                RouteEntry? existing = table.FirstOrDefault(r => SameKey(r, key));
                if (existing is not null && existing.Protocol != Ownership.RouteProtocol)
                {
                    refusals.Add(new MobileAgentError($"ip route replace {want0.Command}", Errno.EEXIST,
                        $"ip route replace {want0.Command}: the route {Describe(existing, _s.NameOf)} is not ours (protocol {existing.Protocol}): left alone"));
                    continue;
                }

                if (existing is not null && !created && want0.Matches(existing))
                {
                    continue;
                }

                RouteEntry Entry() => want0.Route.OutputInterface is null ? want0.Route : want0.Route with { OutputInterface = ctx.Index };
                string cmd = $"ip route replace {want0.Command}";
                steps.Add(existing is null
                    ? new Step(cmd, () => _h.Routes.Replace(Entry()), $"ip route del {want0.Command}", () => DeleteRoute(ForDelete(Entry())))
                    : new Step(cmd, () => _h.Routes.Replace(Entry()), $"ip route replace {Describe(existing, _s.NameOf)}", () => _h.Routes.Replace(ForDelete(existing) with { PreferredSource = existing.PreferredSource, Scope = existing.Scope })));
            }

            foreach (RuleEntry rule in DesiredRules(d))
            {
                if (!_s.OurRules.Any(r => RuleMatches(r, rule)))
                {
                    steps.Add(new Step($"ip rule add {Describe(rule)}", () => _h.Rules.Add(rule),
                        $"ip rule del {Describe(rule)}", () => DeleteRule(rule)));
                }
            }

            // nftables last: one atomic transaction, so a failure leaves the table as it was.
            if (d.NeedsNftables && (_s.Nft is null || !MobileNftTable.Matches(_s.Nft, d)))
            {
                JsonArray? before = _s.Nft;
                steps.Add(new Step(MobileNftTable.DescribeReplace(d), () => MobileNftTable.Replace(_h.Namespace, d),
                    before is null ? MobileNftTable.DescribeDelete : "nft -j -f (the table as it was)",
                    () => MobileNftTable.Restore(_h.Namespace, before)));
            }

            return steps;
        }

        /// <summary>Every marked object <paramref name="d"/> does not own (all of them for null), removed in order: rules, nftables, routes, addresses, links.</summary>
        private List<Step> PlanRemovals(MobileAgentState? d, Ctx ctx, HashSet<int> preDeleted)
        {
            var steps = new List<Step>();
            int? keep = d is null ? null : ctx.Index;
            HashSet<int> ourIndexes = [.. _s.Ours.Select(l => l.Index)];
            HashSet<int> goingLinks = [.. _s.Ours.Where(l => l.Index != keep && !preDeleted.Contains(l.Index)).Select(l => l.Index)];
            List<RuleEntry> wantRules = d is null ? [] : DesiredRules(d);
            List<DesiredRoute> wantRoutes = d is null ? [] : DesiredRoutes(d, ctx.Index);

            foreach (RuleEntry r in _s.OurRules.Where(r => !wantRules.Any(w => RuleMatches(r, w))))
            {
                RuleEntry rule = r;
                steps.Add(new Step($"ip rule del {Describe(rule)}", () => DeleteRule(rule with { Attributes = [] })));
            }

            if (_s.Nft is not null && d?.NeedsNftables != true)
            {
                steps.Add(new Step(MobileNftTable.DescribeDelete, () => MobileNftTable.Delete(_h.Namespace)));
            }

            bool Ours(RouteEntry r) => r.Protocol == Ownership.RouteProtocol &&
                (r.Table == Ownership.MobileTable ||
                 (r.Table == RT_TABLE_MAIN && ((r.OutputInterface is { } oif && ourIndexes.Contains(oif)) ||
                                               (r.Gateway is not null && r.DestinationPrefixLength == 32))));

            foreach (RouteEntry r in _s.Mobile.Concat(_s.Main).Where(Ours))
            {
                if (wantRoutes.Any(w => SameKey(r, w.Route)) ||
                    (r.OutputInterface is { } oif && (goingLinks.Contains(oif) || preDeleted.Contains(oif))))
                {
                    continue; // replaced in place, or goes with its link
                }

                RouteEntry route = ForDelete(r);
                steps.Add(new Step($"ip route del {Describe(r, _s.NameOf)}", () => DeleteRoute(route)));
            }

            if (keep is { } k && _s.Addresses.TryGetValue(k, out List<AddressEntry>? addrs))
            {
                foreach (AddressEntry a in addrs.Where(a => !(a.Local.Equals(d!.HomeAddress) && a.PrefixLength == 32 && a.Peer is null)))
                {
                    var entry = new AddressEntry { InterfaceIndex = k, Local = a.Local, PrefixLength = a.PrefixLength, Peer = a.Peer };
                    steps.Add(new Step($"ip addr del {a.ToIpArguments()} dev {_s.NameOf(k)}", () => DeleteAddress(entry)));
                }
            }

            foreach (Link l in _s.Ours.Where(l => goingLinks.Contains(l.Index)))
            {
                int index = l.Index;
                steps.Add(new Step($"ip link del dev {l.Name}", () => DeleteLink(index)));
            }

            return steps;
        }
    }
}

/// <summary>
/// How the reconciler makes, recognises and re-points the tunnel link: the one seam between it and
/// the device kind. The product always uses <see cref="Ipip"/> (the public constructor of
/// <see cref="MobileAgentReconciler"/> allows nothing else). Host tests on kernels without the ipip
/// module put a veth in its place to exercise rules, routes and nftables only.
/// </summary>
[SupportedOSPlatform("linux")]
internal abstract class MobileTunnelDevice
{
    /// <summary>The classic ipip link of the recipe.</summary>
    public static MobileTunnelDevice Ipip { get; } = new IpipDevice();

    /// <summary>The userspace datapath's TUN link: made by the datapath, only recognised here.</summary>
    public static MobileTunnelDevice UserspaceTun { get; } = new TunDevice();

    /// <summary>True if <paramref name="link"/> is of this device's kind (can be re-pointed in place).</summary>
    public abstract bool IsKind(Link link);

    /// <summary>True if <paramref name="link"/> is of this kind with exactly <paramref name="want"/>.</summary>
    public abstract bool Matches(Link link, IpipParameters want);

    /// <summary>True if a link with <paramref name="want"/> cannot exist beside <paramref name="link"/>.</summary>
    public abstract bool Collides(Link link, IpipParameters want);

    /// <summary>The parameters <paramref name="link"/> has now (to undo a change), or null if unknown.</summary>
    public abstract IpipParameters? ParametersOf(Link link);

    /// <summary>The creation as its <c>ip</c> equivalent.</summary>
    public abstract string CreateCommand(string name, IpipParameters parameters, int mtu, string alias);

    /// <summary>Creates the link, marked with <paramref name="alias"/>, down; returns its index.</summary>
    public abstract int Create(RouteNetlink handle, string name, IpipParameters parameters, int mtu, string alias);

    /// <summary>The change in place as its <c>ip</c> equivalent.</summary>
    public abstract string ChangeCommand(string name, IpipParameters parameters);

    /// <summary>Re-points the link in place (same ifindex).</summary>
    public abstract void Change(RouteNetlink handle, int index, IpipParameters parameters);

    private sealed class TunDevice : MobileTunnelDevice
    {
        public override bool IsKind(Link link) => link.Kind == "tun";

        public override bool Matches(Link link, IpipParameters want) => IsKind(link);

        public override bool Collides(Link link, IpipParameters want) => false;

        public override IpipParameters? ParametersOf(Link link) => null;

        public override string CreateCommand(string name, IpipParameters parameters, int mtu, string alias) =>
            $"ip tuntap add dev {name} mode tun (the userspace datapath's own device)";

        public override int Create(RouteNetlink handle, string name, IpipParameters parameters, int mtu, string alias) =>
            throw new IOException($"ip link show dev {name}: the userspace datapath's TUN device is missing (it goes away when the datapath stops)");

        public override string ChangeCommand(string name, IpipParameters parameters) => $"(userspace datapath {name}: peer {parameters.Remote})";

        public override void Change(RouteNetlink handle, int index, IpipParameters parameters)
        {
            // The userspace datapath points itself at the home agent; nothing in the kernel to change.
        }
    }

    private sealed class IpipDevice : MobileTunnelDevice
    {
        public override bool IsKind(Link link) => link.Kind == "ipip" && link.Ipip is { External: false };

        public override bool Matches(Link link, IpipParameters want) =>
            IsKind(link) && link.Ipip is { UnderlyingLinkIndex: null, FwMark: null, EncapType: null } p &&
            Equals(p.Local, want.Local) && Equals(p.Remote, want.Remote) && p.Ttl == want.Ttl && p.Tos == want.Tos &&
            p.PathMtuDiscovery == want.PathMtuDiscovery;

        public override bool Collides(Link link, IpipParameters want) =>
            IsKind(link) && Equals(link.Ipip!.Local, want.Local) && Equals(link.Ipip.Remote, want.Remote);

        public override IpipParameters? ParametersOf(Link link) => IsKind(link) ? link.Ipip : null;

        public override string CreateCommand(string name, IpipParameters parameters, int mtu, string alias) =>
            $"ip link add {name} mtu {mtu} type ipip {parameters.ToIpArguments()}; ip link set dev {name} alias \"{alias}\"";

        public override int Create(RouteNetlink handle, string name, IpipParameters parameters, int mtu, string alias)
        {
            handle.Links.AddIpip(name, parameters, mtu, alias);
            return handle.Links.IndexOf(name);
        }

        public override string ChangeCommand(string name, IpipParameters parameters) =>
            $"ip link set dev {name} type ipip {parameters.ToIpArguments()}";

        public override void Change(RouteNetlink handle, int index, IpipParameters parameters) => handle.Links.ChangeIpip(index, parameters);
    }
}

/// <summary>
/// The mobile agent's nftables table, <c>ip mobilityagents</c> (the name is the ownership marker),
/// built and read through libnftables' JSON API:
/// <code>
/// table ip mobilityagents {
///   chain output { type route hook output priority mangle; policy accept;
///     tcp dport { PORTS } meta mark set meta mark | 0x00100000 }
///   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
///     oifname "TUNNEL" ip saddr != HOME snat to HOME }
/// }
/// </code>
/// The talk marks in PREROUTING, which only sees forwarded traffic; the laptop's own connections
/// take the output path. A <c>route</c> chain routes the packet again when it changes the mark, so
/// the fwmark rule sends it into the tunnel; its source was chosen by the first lookup (the
/// visited address), hence the source NAT to the home address on the way out of the tunnel.
/// The whole table is written in one transaction (<c>add table; delete table; table {...}</c>):
/// no moment without rules, and a refusal changes nothing.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class MobileNftTable
{
    public const string Family = "ip";
    public const string Name = "mobilityagents";
    public const string OutputChain = "output";
    public const string PostroutingChain = "postrouting";

    /// <summary>NF_IP_PRI_MANGLE: nft's "priority mangle".</summary>
    public const int ManglePriority = -150;

    /// <summary>NF_IP_PRI_NAT_SRC: nft's "priority srcnat".</summary>
    public const int SrcNatPriority = 100;

    public const string DescribeDelete = "nft delete table ip " + Name;

    /// <summary>The table, chains and rules as <c>nft -j list table ip mobilityagents</c> prints them, handles left out.</summary>
    public static List<JsonObject> Objects(MobileAgentState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        string home = s.HomeAddress.ToString();
        var list = new List<JsonObject> { new() { ["table"] = new JsonObject { ["family"] = Family, ["name"] = Name } } };
        if (!s.TcpPorts.IsEmpty)
        {
            // Locally generated TCP to the ports gets the mark on the output path; a route chain
            // re-routes the packet after the mark changes (the talk's PREROUTING mark only catches
            // forwarded traffic).
            JsonNode ports = s.TcpPorts.Count == 1
                ? JsonValue.Create((int)s.TcpPorts.Min)
                : new JsonObject { ["set"] = new JsonArray([.. s.TcpPorts.Select(p => (JsonNode)JsonValue.Create((int)p))]) };
            list.Add(Chain(OutputChain, "route", "output", ManglePriority));
            list.Add(Rule(OutputChain,
                Match("==", new JsonObject { ["payload"] = new JsonObject { ["protocol"] = "tcp", ["field"] = "dport" } }, ports),
                new JsonObject
                {
                    ["mangle"] = new JsonObject
                    {
                        ["key"] = Meta("mark"),
                        ["value"] = new JsonObject { ["|"] = new JsonArray(Meta("mark"), (long)Ownership.FwMarkBit) },
                    },
                }));
        }

        // Whatever the mark sent into the tunnel (our ports, or the administrator's own marking with
        // FwMarkSelection) leaves with the home address as source: the home agent accepts nothing else.
        list.Add(Chain(PostroutingChain, "nat", "postrouting", SrcNatPriority));
        list.Add(Rule(PostroutingChain,
            Match("==", Meta("oifname"), s.TunnelName),
            Match("!=", new JsonObject { ["payload"] = new JsonObject { ["protocol"] = "ip", ["field"] = "saddr" } }, home),
            new JsonObject { ["snat"] = new JsonObject { ["addr"] = home } }));

        // Parsed back so that every value compares the way a listing's does.
        return [.. list.Select(o => JsonNode.Parse(o.ToJsonString())!.AsObject())];
    }

    /// <summary>The table in nft syntax, one line: what the log shows and what errors name.</summary>
    public static string DescribeReplace(MobileAgentState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        string ports = s.TcpPorts.Count == 1
            ? s.TcpPorts.Min.ToString(CultureInfo.InvariantCulture)
            : "{ " + string.Join(", ", s.TcpPorts) + " }";
        string output = s.TcpPorts.IsEmpty
            ? ""
            : $"chain {OutputChain} {{ type route hook output priority mangle; policy accept; tcp dport {ports} meta mark set meta mark | 0x{Ownership.FwMarkBit:x8}; }}; ";
        return string.Create(CultureInfo.InvariantCulture,
            $"nft 'add table {Family} {Name}; delete table {Family} {Name}; table {Family} {Name} {{ {output}" +
            $"chain {PostroutingChain} {{ type nat hook postrouting priority srcnat; policy accept; oifname \"{s.TunnelName}\" ip saddr != {s.HomeAddress} snat to {s.HomeAddress}; }}; }}'");
    }

    /// <summary>Replaces the table (or creates it) in one transaction.</summary>
    public static void Replace(NetworkNamespace netns, MobileAgentState s) =>
        Nftables.Run(netns, Batch(AddThenDelete().Concat(Objects(s).Select(o => Command("add", o)))), DescribeReplace(s));

    /// <summary>Deletes the table if it exists (add + delete in one transaction: no error when absent).</summary>
    public static void Delete(NetworkNamespace netns) => Nftables.Run(netns, Batch(AddThenDelete()), DescribeDelete);

    /// <summary>Puts back a table as listed (null: no table).</summary>
    public static void Restore(NetworkNamespace netns, JsonArray? listed)
    {
        if (listed is null)
        {
            Delete(netns);
            return;
        }

        Nftables.Run(netns, Batch(AddThenDelete().Concat(listed.Select(o => Command("add", JsonNode.Parse(o!.ToJsonString())!.AsObject())))), "nft -j -f (the table as it was)");
    }

    /// <summary>Our table's objects without handles, or null if there is none. Equivalent to: <c>nft -j list tables ip; nft -j list table ip mobilityagents</c>.</summary>
    public static JsonArray? List(NetworkNamespace netns)
    {
        JsonArray tables = Items(Nftables.Run(netns, Batch([Command("list", new JsonObject { ["tables"] = new JsonObject { ["family"] = Family } })]), "nft -j list tables ip"));
        bool present = tables.Any(o => o?["table"] is JsonObject t && (string?)t["family"] == Family && (string?)t["name"] == Name);
        if (!present)
        {
            return null;
        }

        JsonArray items = Items(Nftables.Run(netns,
            Batch([Command("list", new JsonObject { ["table"] = new JsonObject { ["family"] = Family, ["name"] = Name } })]),
            $"nft -j list table {Family} {Name}"));
        foreach (JsonNode? o in items)
        {
            foreach (KeyValuePair<string, JsonNode?> kv in o!.AsObject())
            {
                (kv.Value as JsonObject)?.Remove("handle");
            }
        }

        return items;
    }

    /// <summary>True if the listed table holds exactly the objects of <paramref name="s"/>.</summary>
    public static bool Matches(JsonArray listed, MobileAgentState s)
    {
        ArgumentNullException.ThrowIfNull(listed);
        List<JsonObject> want = Objects(s);
        if (listed.Count != want.Count)
        {
            return false;
        }

        var left = listed.ToList();
        foreach (JsonObject w in want)
        {
            int i = left.FindIndex(o => JsonNode.DeepEquals(o, w));
            if (i < 0)
            {
                return false;
            }

            left.RemoveAt(i);
        }

        return true;
    }

    private static JsonArray Items(string output)
    {
        var result = new JsonArray();
        if (string.IsNullOrWhiteSpace(output))
        {
            return result;
        }

        if (JsonNode.Parse(output)?["nftables"] is JsonArray all)
        {
            foreach (JsonNode? o in all)
            {
                if (o is JsonObject obj && !obj.ContainsKey("metainfo"))
                {
                    result.Add(JsonNode.Parse(obj.ToJsonString()));
                }
            }
        }

        return result;
    }

    private static IEnumerable<JsonObject> AddThenDelete() =>
    [
        Command("add", new JsonObject { ["table"] = new JsonObject { ["family"] = Family, ["name"] = Name } }),
        Command("delete", new JsonObject { ["table"] = new JsonObject { ["family"] = Family, ["name"] = Name } }),
    ];

    private static JsonObject Command(string verb, JsonObject obj) => new() { [verb] = obj };

    private static string Batch(IEnumerable<JsonObject> commands) =>
        new JsonObject { ["nftables"] = new JsonArray([.. commands]) }.ToJsonString();

    private static JsonObject Chain(string name, string type, string hook, int prio) => new()
    {
        ["chain"] = new JsonObject
        {
            ["family"] = Family,
            ["table"] = Name,
            ["name"] = name,
            ["type"] = type,
            ["hook"] = hook,
            ["prio"] = prio,
            ["policy"] = "accept",
        },
    };

    private static JsonObject Rule(string chain, params JsonNode[] expr) => new()
    {
        ["rule"] = new JsonObject
        {
            ["family"] = Family,
            ["table"] = Name,
            ["chain"] = chain,
            ["expr"] = new JsonArray(expr),
        },
    };

    private static JsonObject Match(string op, JsonNode left, JsonNode right) => new()
    {
        ["match"] = new JsonObject { ["op"] = op, ["left"] = left, ["right"] = right },
    };

    private static JsonObject Meta(string key) => new() { ["meta"] = new JsonObject { ["key"] = key } };
}
