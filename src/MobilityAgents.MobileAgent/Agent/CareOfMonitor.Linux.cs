using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Threading.Channels;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>The care-of address at one moment, and a token cancelled when it changes.</summary>
/// <param name="Address">The source the kernel picks for the route to the home agent; null when there is no route.</param>
/// <param name="Gateway">The visited network's router on that route; null when the home agent is on-link.</param>
/// <param name="Changed">Cancelled as soon as the address or the router is different (a move).</param>
public readonly record struct CareOf(IPAddress? Address, IPAddress? Gateway, CancellationToken Changed);

/// <summary>
/// Movement detection from netlink events, not polling: listens to link, IPv4 address and IPv4
/// route events in the agent's namespace (<c>ip monitor link address route</c>), and after a burst
/// (debounced on the <see cref="TimeProvider"/>, <see cref="AgentTimers.MovementDebounce"/>) asks
/// the kernel again which source it would use towards the home agent
/// (<c>ip route get HOME-AGENT</c>). When that changes, <see cref="Current"/>'s token is cancelled.
/// The agent's own objects (routes marked with <see cref="Ownership.RouteProtocol"/>, the tunnel
/// link) do not trigger lookups, and a lookup answered through the tunnel itself is ignored.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class CareOfMonitor : IAsyncDisposable
{
    private const RouteMonitorGroups Groups = RouteMonitorGroups.Links | RouteMonitorGroups.Addresses | RouteMonitorGroups.Routes;

    private readonly NetworkNamespace _netns;
    private readonly string _tunnelName;
    private readonly TimeProvider _time;
    private readonly AgentTimers _timers;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private RouteMonitor? _monitor;
    private RouteNetlink? _handle;
    private Task _loop = Task.CompletedTask;
    private IPAddress _target;
    private IPAddress? _current;
    private IPAddress? _gateway;
    private CancellationTokenSource _changed = new();

    public CareOfMonitor(NetworkNamespace netns, IPAddress homeAgentAddress, string tunnelName, TimeProvider time, AgentTimers timers, ILogger logger)
    {
        _netns = netns ?? throw new ArgumentNullException(nameof(netns));
        _target = homeAgentAddress ?? throw new ArgumentNullException(nameof(homeAgentAddress));
        _tunnelName = tunnelName ?? throw new ArgumentNullException(nameof(tunnelName));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _timers = timers ?? throw new ArgumentNullException(nameof(timers));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
    }

    /// <summary>The care-of address now, and the token of its next change.</summary>
    public CareOf Current
    {
        get
        {
            lock (_lock)
            {
                return new CareOf(_current, _gateway, _changed.Token);
            }
        }
    }

    /// <summary>The address the care-of address is looked up towards.</summary>
    public IPAddress Target
    {
        get
        {
            lock (_lock)
            {
                return _target;
            }
        }
    }

    /// <summary>Subscribes to the events first (nothing after this call is missed), then looks the care-of address up.</summary>
    public void Start()
    {
        _monitor = RouteMonitor.Start(Groups, _netns);
        _handle = RouteNetlink.Open(_netns);
        Lookup("start");
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Looks up towards another home agent address (the registration reply's); a change of care-of is signalled as a move.</summary>
    public void Retarget(IPAddress homeAgentAddress)
    {
        ArgumentNullException.ThrowIfNull(homeAgentAddress);
        lock (_lock)
        {
            if (_target.Equals(homeAgentAddress))
            {
                return;
            }

            _target = homeAgentAddress;
        }

        Lookup("home agent address " + homeAgentAddress);
    }

    /// <summary>Looks the care-of address up now (e.g. when binding to it failed: it may be gone).</summary>
    public void Recheck(string why) => Lookup(why);

    private async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            ChannelReader<RouteEvent> events = _monitor!.Events;
            try
            {
                while (await events.WaitToReadAsync(stop).ConfigureAwait(false))
                {
                    string? why = Drain(events, null);
                    if (why is null)
                    {
                        continue; // only our own objects changed
                    }

                    // A move is a burst: wait for the rest of it, then look once.
                    await Task.Delay(_timers.MovementDebounce, _time, stop).ConfigureAwait(false);
                    why = Drain(events, why);
                    Lookup(why!);
                }

                return; // disposed
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NetlinkSocketException or ChannelClosedException)
            {
                // The monitor's socket failed: open a new one (and look again: events may be lost).
                Log.MonitorFailed(_logger, e.Message);
                _monitor.Dispose();
                await Task.Delay(_timers.ReconnectBaseDelay, _time, stop).ConfigureAwait(false);
                _monitor = RouteMonitor.Start(Groups, _netns);
                Lookup("event monitor restarted");
            }
        }
    }

    /// <summary>Reads every pending event; returns the first one that is not about our own objects (or <paramref name="why"/>).</summary>
    private string? Drain(ChannelReader<RouteEvent> events, string? why)
    {
        while (events.TryRead(out RouteEvent? e))
        {
            if (why is null && Relevant(e) is { } w)
            {
                why = w;
            }
        }

        return why;
    }

    private string? Relevant(RouteEvent e) => e switch
    {
        RouteChangeEvent r when r.Route.Protocol == Ownership.RouteProtocol || r.Route.Table == Ownership.MobileTable => null,
        RouteChangeEvent r => $"route {(r.Deleted ? "deleted" : "added")}: {r.Route.ToIpArguments()}",
        LinkEvent l when l.Link.Name == _tunnelName => null,
        LinkEvent l => $"link {l.Link.Name} {(l.Deleted ? "deleted" : l.Link.IsUp ? "up" : "down")}",
        AddressEvent a => $"address {(a.Deleted ? "deleted" : "added")}: {a.Address.ToIpArguments()}",
        ResyncRequired => "events were lost (resync)",
        _ => null,
    };

    /// <summary>Asks the kernel for the source towards the home agent; signals a move if it changed.</summary>
    private void Lookup(string why)
    {
        lock (_lock)
        {
            IPAddress? found, gateway;
            try
            {
                (found, gateway) = Source(_target, out bool throughTunnel);
                if (throughTunnel)
                {
                    Log.LookupThroughTunnel(_logger, _target.ToString(), _tunnelName);
                    return;
                }
            }
            catch (NetlinkException e)
            {
                Log.LookupFailed(_logger, _target.ToString(), e.Message);
                return;
            }

            if (Equals(found, _current) && Equals(gateway, _gateway))
            {
                return;
            }

            Log.CareOfChanged(_logger, Describe(_current, _gateway), Describe(found, gateway), why);
            _current = found;
            _gateway = gateway;
            CancellationTokenSource old = _changed;
            _changed = new CancellationTokenSource();
            old.Cancel();
        }
    }

    private static string Describe(IPAddress? address, IPAddress? gateway) =>
        address is null ? "none" : gateway is null ? address.ToString() : $"{address} (via {gateway})";

    /// <summary>
    /// <c>ip route get TARGET</c>: the source address and the router. When the answer came from the
    /// reconciler's own pin route (<c>TARGET/32 via GW proto 77</c>, which may still name the
    /// previous network's router right after a move), the router is the one the visited network's
    /// own routes give (longest prefix in the main table, our routes left out).
    /// </summary>
    private (IPAddress? Source, IPAddress? Gateway) Source(IPAddress target, out bool throughTunnel)
    {
        throughTunnel = false;
        RouteEntry? r = _handle!.Routes.Get(target);
        if (r?.PreferredSource is not { AddressFamily: AddressFamily.InterNetwork } src || src.Equals(IPAddress.Any))
        {
            return (null, null);
        }

        if (r.OutputInterface is { } oif && _handle.Links.Get(_tunnelName) is { } tunnel && tunnel.Index == oif)
        {
            // Only when the route pinning the home agent to the visited network is missing: the
            // source would be the home address. Keep the last care-of address instead.
            throughTunnel = true;
            return (src, null);
        }

        IPAddress? gateway = r.Gateway;
        if (r.Table == RtnetlinkConstants.RT_TABLE_MAIN)
        {
            List<RouteEntry> main = _handle.Routes.List(RtnetlinkConstants.RT_TABLE_MAIN);
            if (main.Any(m => m.Protocol == Ownership.RouteProtocol && m.DestinationPrefixLength == 32 && m.Destination.Equals(target)))
            {
                gateway = main
                    .Where(m => m.Protocol != Ownership.RouteProtocol && m.Type == RtnetlinkConstants.RTN_UNICAST &&
                                new IPNetwork(m.Destination, m.DestinationPrefixLength).Contains(target))
                    .OrderByDescending(m => m.DestinationPrefixLength)
                    .ThenBy(m => m.Metric ?? 0)
                    .FirstOrDefault()?.Gateway;
            }
        }

        return (src, gateway);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _monitor?.Dispose();
        _handle?.Dispose();
        _stop.Dispose();
    }
}
