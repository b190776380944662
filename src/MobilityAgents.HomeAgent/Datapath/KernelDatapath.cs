using System.Runtime.Versioning;
using System.Threading.Channels;
using System.Net;
using MobilityAgents.Core;
using MobilityAgents.Datapath;
using MobilityAgents.HomeAgent.Configuration;
using MobilityAgents.Netlink;
using MobilityAgents.Reconciler;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.HomeAgent.Datapath;

/// <summary>
/// The one writer of the gateway's kernel state: it subscribes to the binding table and, after
/// every change that matters (created, moved, replaced, expired, deregistered; not refreshes),
/// applies the state the bindings call for through the <see cref="HomeAgentReconciler"/>. It also
/// watches the kernel and re-asserts objects someone else deleted (rate limited). At start it
/// reconciles (which sweeps marked objects no binding owns); at a clean stop it removes everything
/// it installed.
/// <para>
/// Tunnels are the kernel's classic ipip links (datapath <c>kernel</c>, or <c>auto</c> on a kernel
/// that can make them), or are carried by the userspace datapath (<see cref="UserspaceTunnel"/>):
/// one TUN link <see cref="SharedLinkName"/> into which the home addresses are routed, the agent
/// encapsulating each packet itself. Bindings of laptops behind NAT (ipip-in-UDP) always take the
/// userspace datapath, which learns their NAT mappings from authenticated keepalives only
/// (<see cref="KeepaliveKeys"/>). Routes, proxy ARP and forwarding are the kernel's in every case.
/// </para>
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class KernelDatapath(BindingTable table, HomeAgentOptions options, KeepaliveKeys keys, TimeProvider time,
    ILogger<KernelDatapath> log, ILogger<HomeAgentReconciler> reconcilerLog, ILogger<UserspaceTunnel> tunnelLog)
    : BackgroundService
{
    /// <summary>The userspace datapath's TUN link (also carries UDP bindings when the kernel datapath is in use).</summary>
    public const string SharedLinkName = Ownership.LinkNamePrefix + "-u0";

    /// <summary>The shared link's ownership marker.</summary>
    public const string SharedLinkAlias = Ownership.LinkAliasPrefix + "userspace";

    /// <summary>ipip-in-UDP's outer headers take 8 bytes more than ipip's.</summary>
    public const int UdpOverhead = 8;

    /// <summary>Several events that arrive together are applied once.</summary>
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(20);

    /// <summary>At most one re-assertion after foreign deletions per this interval.</summary>
    private static readonly TimeSpan ReassertInterval = TimeSpan.FromSeconds(1);

    private NetlinkHomeAgentKernel? _kernel;
    private UserspaceTunnel? _tunnel;
    private bool _allUserspace;
    private HomeAgentReconciler? _reconciler;
    private ChannelReader<BindingEvent>? _events;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(options.LanInterface))
        {
            throw new InvalidOperationException("LanInterface: the kernel datapath needs the home LAN interface (where proxy ARP answers for home addresses)");
        }

        if (options.Datapath == DatapathKind.KernelExternal)
        {
            // The reconciler programs one classic ipip link per binding; the external (collect_md)
            // device with encap routes is tested at the kernel layer but not wired to the agent yet.
            throw new InvalidOperationException("Datapath: kernel-external is not available yet; use auto, kernel or userspace");
        }

        _allUserspace = options.Datapath == DatapathKind.Userspace;
        if (options.Datapath == DatapathKind.Auto)
        {
            string? why = IpipSupport.Probe(NetworkNamespace.Current);
            _allUserspace = why is not null;
            if (why is null)
            {
                Log.DatapathChosen(log, "kernel", "the kernel can create ipip links (classic ipip link per laptop)");
            }
            else
            {
                Log.DatapathChosen(log, "userspace", $"the kernel cannot create an ipip link ({why}): the agent encapsulates through TUN link {SharedLinkName}");
            }
        }
        else
        {
            Log.DatapathChosen(log, _allUserspace ? "userspace" : "kernel", "as configured");
        }

        // The userspace datapath always runs: it carries every tunnel in userspace mode, and the
        // UDP-encapsulated ones (laptops behind NAT) in kernel mode.
        try
        {
            _tunnel = UserspaceTunnel.Start(new UserspaceTunnelOptions
            {
                TunName = SharedLinkName,
                Alias = SharedLinkAlias,
                Mtu = options.TunnelMtu - UdpOverhead,
                LocalAddress = options.OuterAddress,
                EnableIpip = _allUserspace,
                EnableUdp = true,
                UdpPort = options.UdpPort,
                Time = time,
            }, tunnelLog);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"Datapath: the userspace datapath (TUN {SharedLinkName}, UDP port {options.UdpPort} on {options.OuterAddress}) could not start: {e.Message}", e);
        }

        _tunnel.EndpointLearned += (id, endpoint) => Log.EndpointLearned(log, id, endpoint.ToString());
        Log.UdpListening(log, options.OuterAddress.ToString(), _tunnel.UdpPort);

        // Subscribe before the server accepts registrations (hosted services start before Kestrel).
        _events = table.Subscribe();
        _kernel = NetlinkHomeAgentKernel.Open(NetworkNamespace.Current);
        _reconciler = new HomeAgentReconciler(_kernel, reconcilerLog);
        Apply("start");
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using RouteMonitor monitor = RouteMonitor.Start(RouteMonitorGroups.Links | RouteMonitorGroups.Routes | RouteMonitorGroups.Neighbours);
        Task healing = HealAsync(monitor, stoppingToken);
        try
        {
            while (await _events!.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                bool relevant = false;
                // Coalesce a burst (many laptops at once) into one Apply.
                await Task.Delay(Coalesce, time, stoppingToken).ConfigureAwait(false);
                while (_events.TryRead(out BindingEvent? e))
                {
                    relevant |= e.Change != BindingChange.Refreshed;
                }

                if (relevant)
                {
                    Apply("binding change");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await healing.ConfigureAwait(false);
    }

    private async Task HealAsync(RouteMonitor monitor, CancellationToken stoppingToken)
    {
        var limiter = new ReassertRateLimiter(time, ReassertInterval);
        try
        {
            await foreach (RouteEvent e in monitor.Events.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                if (!_reconciler!.Concerns(e))
                {
                    continue;
                }

                if (!limiter.TryAcquire(out TimeSpan wait))
                {
                    await Task.Delay(wait, time, stoppingToken).ConfigureAwait(false);
                }

                Log.Reasserting(log, e.GetType().Name);
                Report(_reconciler.Reassert($"kernel event {e.GetType().Name}"));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void Apply(string why)
    {
        IReadOnlyList<Binding> bindings = table.List();
        HomeAgentState desired = HomeAgentState.FromBindings(options.OuterAddress, options.LanInterface, bindings, options.TunnelMtu,
            _tunnel?.TunName, _allUserspace);
        Log.Applying(log, why, desired.Tunnels.Count);

        // The userspace datapath learns its peers before the routes send it their traffic.
        _tunnel?.SetPeers(desired.Tunnels.Values.Where(t => t.Shared).Select(PeerOf));
        Report(_reconciler!.Apply(desired));
    }

    /// <summary>What the userspace datapath needs of a tunnel: who may send as the home address, from where, how.</summary>
    private TunnelPeer PeerOf(HomeAgentTunnel t) => new()
    {
        Id = t.BindingId,
        Inner = new IPNetwork(t.HomeAddress, 32),
        OuterAddress = t.CareOfAddress,
        Encapsulation = t.Encapsulation == Encapsulation.IpipUdp ? OuterEncapsulation.Udp : OuterEncapsulation.Ipip,
        Keepalive = t.Encapsulation == Encapsulation.IpipUdp ? new KeepaliveCredentials(keys.TokenOf(t.BindingId), keys.KeyOf(t.BindingId)) : null,
    };

    private void Report(HomeAgentReached? reached)
    {
        if (reached is null)
        {
            return;
        }

        foreach (ReconcileError e in reached.Errors)
        {
            Log.KernelError(log, e.BindingId ?? "-", e.Message);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_events is not null)
        {
            table.Unsubscribe(_events);
        }

        if (_reconciler is not null)
        {
            // A clean stop removes exactly what this agent installed.
            HomeAgentReached reached = _reconciler.Apply(null);
            Report(reached);
            Log.Stopped(log, reached.Errors.Length);
        }

        _kernel?.Dispose();
        _tunnel?.Dispose();
    }
}
