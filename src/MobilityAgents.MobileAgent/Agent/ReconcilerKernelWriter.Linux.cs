using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using MobilityAgents.Reconciler;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// The real kernel writer: the mobile agent reconciler over its own rtnetlink handle in the agent's
/// network namespace (it logs every change as its <c>ip</c> equivalent). As a hosted service it
/// also watches for someone else deleting what it installed (the tunnel, the home address, a rule
/// or route) and puts it back, at most once per <see cref="ReassertInterval"/>.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class ReconcilerKernelWriter : BackgroundService, IKernelWriter
{
    /// <summary>Shortest time between two re-assertions after deletions by someone else.</summary>
    public static readonly TimeSpan ReassertInterval = TimeSpan.FromSeconds(1);

    private const RouteMonitorGroups Watched = RouteMonitorGroups.Links | RouteMonitorGroups.Addresses | RouteMonitorGroups.Routes | RouteMonitorGroups.Rules;

    private readonly NetworkNamespace _netns;
    private readonly TimeProvider _time;
    private readonly RouteNetlink _handle;
    private readonly MobileAgentReconciler _reconciler;

    public ReconcilerKernelWriter(NetworkNamespace netns, TimeProvider time, ILogger<MobileAgentReconciler> logger)
    {
        _netns = netns ?? throw new ArgumentNullException(nameof(netns));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _handle = RouteNetlink.Open(netns);
        _reconciler = new MobileAgentReconciler(_handle, logger);
    }

    public KernelOutcome Apply(MobileAgentState? desired)
    {
        MobileAgentReached reached = _reconciler.Apply(desired);
        return reached.Errors.IsEmpty ? KernelOutcome.Done : new KernelOutcome([.. reached.Errors.Select(e => e.Message)]);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using RouteMonitor monitor = RouteMonitor.Start(Watched, _netns);
        var limiter = new ReassertRateLimiter(_time, ReassertInterval);
        Task pending = Task.CompletedTask;
        try
        {
            await foreach (RouteEvent e in monitor.Events.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                if (!_reconciler.Concerns(e))
                {
                    continue;
                }

                if (limiter.TryAcquire(out TimeSpan wait))
                {
                    _reconciler.Reassert(Describe(e));
                }
                else if (pending.IsCompleted)
                {
                    // One re-assertion after the interval covers the whole storm.
                    string why = Describe(e);
                    pending = Task.Delay(wait, _time, stoppingToken).ContinueWith(
                        _ => _reconciler.Reassert(why), stoppingToken, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await pending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static string Describe(RouteEvent e) => e switch
    {
        LinkEvent l => $"link {l.Link.Name} deleted",
        AddressEvent a => $"address {a.Address.ToIpArguments()} deleted",
        RuleEvent => "rule deleted",
        RouteChangeEvent r => $"route {r.Route.ToIpArguments()} deleted",
        ResyncRequired => "netlink events lost",
        _ => e.GetType().Name,
    };

    public override void Dispose()
    {
        base.Dispose();
        _handle.Dispose();
    }
}
