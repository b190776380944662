using System.Runtime.Versioning;
using System.Threading.Channels;
using MobilityAgents.Core;
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
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class KernelDatapath(BindingTable table, HomeAgentOptions options, TimeProvider time, ILogger<KernelDatapath> log, ILogger<HomeAgentReconciler> reconcilerLog)
    : BackgroundService
{
    /// <summary>Several events that arrive together are applied once.</summary>
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(20);

    /// <summary>At most one re-assertion after foreign deletions per this interval.</summary>
    private static readonly TimeSpan ReassertInterval = TimeSpan.FromSeconds(1);

    private NetlinkHomeAgentKernel? _kernel;
    private HomeAgentReconciler? _reconciler;
    private ChannelReader<BindingEvent>? _events;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(options.LanInterface))
        {
            throw new InvalidOperationException("LanInterface: the kernel datapath needs the home LAN interface (where proxy ARP answers for home addresses)");
        }

        if (options.Datapath != DatapathKind.KernelClassic)
        {
            // The reconciler programs one classic ipip link per binding; the external (collect_md)
            // device with encap routes is tested at the kernel layer but not wired to the agent yet.
            throw new InvalidOperationException("Datapath: kernel-external is not available yet; use kernel-classic");
        }

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
        HomeAgentState desired = HomeAgentState.FromBindings(options.OuterAddress, options.LanInterface, table.List(), options.TunnelMtu);
        Log.Applying(log, why, desired.Tunnels.Count);
        Report(_reconciler!.Apply(desired));
    }

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
    }
}
