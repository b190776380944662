using System.Net;
using System.Runtime.Versioning;
using MobilityAgents.Datapath;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Netlink;
using MobilityAgents.Reconciler;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// The real kernel writer: the mobile agent reconciler over its own rtnetlink handle in the agent's
/// network namespace (it logs every change as its <c>ip</c> equivalent). As a hosted service it
/// also watches for someone else deleting what it installed (the tunnel, the home address, a rule
/// or route) and puts it back, at most once per <see cref="ReassertInterval"/>.
/// <para>
/// The tunnel is the kernel's classic ipip link, or the userspace datapath's TUN device
/// (<see cref="UserspaceTunnel"/>, started and stopped here, the one writer) when the datapath is
/// userspace (configured, or <c>auto</c> on a kernel that cannot make ipip links) and whenever the
/// home agent granted ipip-in-UDP (the laptop is behind NAT). Addresses, rules, routes and
/// nftables are the reconciler's in every case.
/// </para>
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
    private readonly ILogger _log;
    private readonly ILogger<UserspaceTunnel> _tunnelLog;
    private readonly bool _userspaceOnly;
    private readonly Lock _lock = new();
    private UserspaceTunnel? _tunnel;
    private TunnelPeer? _peer;
    private TimeSpan _tunnelInterval;

    public ReconcilerKernelWriter(NetworkNamespace netns, MobileAgentOptions options, TimeProvider time, ILogger<MobileAgentReconciler> logger,
        ILogger<ReconcilerKernelWriter> log, ILogger<UserspaceTunnel> tunnelLog)
    {
        ArgumentNullException.ThrowIfNull(options);
        _netns = netns ?? throw new ArgumentNullException(nameof(netns));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _log = log ?? throw new ArgumentNullException(nameof(log));
        _tunnelLog = tunnelLog ?? throw new ArgumentNullException(nameof(tunnelLog));
        _handle = RouteNetlink.Open(netns);
        _reconciler = new MobileAgentReconciler(_handle, logger);
        switch (options.Datapath)
        {
            case MobileDatapath.Userspace:
                _userspaceOnly = true;
                Log.DatapathChosen(_log, "userspace", "as configured");
                break;
            case MobileDatapath.Kernel:
                Log.DatapathChosen(_log, "kernel", "as configured (ipip-in-UDP behind NAT goes through userspace)");
                break;
            default:
                string? why = IpipSupport.Probe(netns);
                _userspaceOnly = why is not null;
                Log.DatapathChosen(_log, why is null ? "kernel" : "userspace", why is null
                    ? "the kernel can create ipip links (ipip-in-UDP behind NAT goes through userspace)"
                    : $"the kernel cannot create an ipip link ({why}): the agent encapsulates through a TUN device");
                break;
        }
    }

    public KernelOutcome Apply(MobileAgentState? desired)
    {
        lock (_lock)
        {
            if (desired is not null && _userspaceOnly && !desired.UserspaceTunnel)
            {
                desired = desired with { UserspaceTunnel = true };
            }

            var errors = new List<string>();
            if (desired is { UserspaceTunnel: true })
            {
                if (EnsureTunnel(desired) is { } failure)
                {
                    errors.Add(failure);
                }
            }
            else
            {
                StopTunnel(); // its TUN link (and what is on it) goes with it; the reconciler makes the ipip link
            }

            MobileAgentReached reached = _reconciler.Apply(desired);
            errors.AddRange(reached.Errors.Select(e => e.Message));
            if (desired is null)
            {
                StopTunnel();
            }

            return errors.Count == 0 ? KernelOutcome.Done : new KernelOutcome(errors);
        }
    }

    /// <summary>
    /// The userspace datapath for <paramref name="desired"/>: started if needed (after removing a
    /// kernel ipip link of ours that holds the name), pointed at the home agent (a move or a new
    /// binding sends keepalives at once, so the home agent learns the new NAT mapping without
    /// waiting for the interval). Returns what failed, or null.
    /// </summary>
    private string? EnsureTunnel(MobileAgentState desired)
    {
        bool udp = desired.UdpPort != 0;
        var peer = new TunnelPeer
        {
            Id = "home-agent",
            Inner = new IPNetwork(IPAddress.Any, 0),
            OuterAddress = desired.HomeAgentAddress,
            Encapsulation = udp ? OuterEncapsulation.Udp : OuterEncapsulation.Ipip,
            UdpPort = desired.UdpPort,
            Keepalive = udp ? new KeepaliveCredentials(desired.KeepaliveToken, [.. desired.KeepaliveKey]) : null,
        };
        try
        {
            if (_tunnel is not null && (_tunnel.TunName != desired.TunnelName || (udp && _tunnelInterval != desired.KeepaliveInterval)))
            {
                StopTunnel();
            }

            if (_tunnel is null)
            {
                Link? held = _handle.Links.Get(desired.TunnelName);
                if (held is not null && MobileAgentReconciler.IsOurLink(held) && held.Kind != "tun")
                {
                    _handle.Links.Delete(held.Index); // our kernel ipip link of an earlier binding
                }

                _tunnel = UserspaceTunnel.Start(new UserspaceTunnelOptions
                {
                    TunName = desired.TunnelName,
                    Alias = MobileAgentState.TunnelAlias,
                    Mtu = desired.TunnelMtu,
                    EnableIpip = true,
                    EnableUdp = true,
                    KeepaliveInterval = udp ? desired.KeepaliveInterval : TimeSpan.FromSeconds(15),
                    Namespace = _netns,
                    Time = _time,
                }, _tunnelLog);
                _tunnelInterval = udp ? desired.KeepaliveInterval : TimeSpan.FromSeconds(15);
                Log.UserspaceStarted(_log, _tunnel.TunName, _tunnel.UdpPort);
                _peer = null;
            }

            if (!peer.Equals(_peer))
            {
                _tunnel.SetPeers([peer]);
                _peer = peer;
            }

            if (udp)
            {
                // Every Apply follows a registration (a move included): the home agent learns where
                // the NAT maps us now without waiting for the interval. The first keepalive can beat
                // the home agent's own update (it learns the binding's new state a moment after its
                // reply) or be lost: send again, backing off, until one is acknowledged.
                SendKeepalivesUntilAcknowledged(_tunnel, peer.Id);
            }

            return null;
        }
        catch (Exception e) when (e is NetlinkException or NetlinkSocketException or IOException or ArgumentException or InvalidOperationException)
        {
            string message = $"userspace datapath {desired.TunnelName}: {e.Message}";
            Log.UserspaceFailed(_log, message);
            return message;
        }
    }

    /// <summary>Delays between keepalive retries after a registration, until an ack arrives (about 6 s in all).</summary>
    private static readonly TimeSpan[] KeepaliveRetries =
        [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(400),
         TimeSpan.FromMilliseconds(800), TimeSpan.FromMilliseconds(1600), TimeSpan.FromMilliseconds(3200)];

    private void SendKeepalivesUntilAcknowledged(UserspaceTunnel tunnel, string peerId)
    {
        DateTimeOffset since = _time.GetUtcNow();
        tunnel.SendKeepalivesNow();
        _ = Task.Run(async () =>
        {
            foreach (TimeSpan delay in KeepaliveRetries)
            {
                await Task.Delay(delay, _time).ConfigureAwait(false);
                lock (_lock)
                {
                    if (!ReferenceEquals(_tunnel, tunnel) || tunnel.LastAckOf(peerId) >= since)
                    {
                        return; // acknowledged, or this datapath was stopped or replaced
                    }

                    tunnel.SendKeepalivesNow();
                }
            }
        });
    }

    private void StopTunnel()
    {
        if (_tunnel is not null)
        {
            _tunnel.Dispose();
            _tunnel = null;
            _peer = null;
        }
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
                    Reassert(Describe(e));
                }
                else if (pending.IsCompleted)
                {
                    // One re-assertion after the interval covers the whole storm.
                    string why = Describe(e);
                    pending = Task.Delay(wait, _time, stoppingToken).ContinueWith(
                        _ => Reassert(why), stoppingToken, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await pending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// Re-asserts the last applied state, serialised with <see cref="Apply"/>: a re-assertion
    /// racing a switch between the kernel ipip link and the userspace TUN (which share the name)
    /// would otherwise re-create the link the switch just removed.
    /// </summary>
    private void Reassert(string why)
    {
        lock (_lock)
        {
            _reconciler.Reassert(why);
        }
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
        lock (_lock)
        {
            StopTunnel();
        }

        _handle.Dispose();
    }
}
