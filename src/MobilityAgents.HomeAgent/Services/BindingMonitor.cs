using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using MobilityAgents.Core;
using MobilityAgents.Protocol.V1;

namespace MobilityAgents.HomeAgent.Services;

/// <summary>
/// Subscribes to the <see cref="BindingTable"/> once and (1) logs every binding change, in table
/// order; (2) tells the heartbeat stream keeping a binding alive when that binding is replaced by
/// another device (NOTICE_BINDING_REPLACED) or expires (NOTICE_REREGISTER); (3) when the host
/// starts stopping (SIGTERM), sends NOTICE_SHUTTING_DOWN to every open heartbeat stream and ends
/// it, before the server stops (ApplicationStopping fires before the server's graceful stop).
/// </summary>
internal sealed class BindingMonitor(BindingTable table, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<BindingMonitor> logger) : BackgroundService
{
    /// <summary>Replaced binding ids remembered so a late heartbeat hears "replaced", not "register again" (which would replace back).</summary>
    private const int ReplacedMemory = 4096;

    private readonly ConcurrentDictionary<HeartbeatSession, byte> _sessions = new();
    private readonly ConcurrentDictionary<string, (string Identity, string Reason, DateTimeOffset At)> _replaced = new(StringComparer.Ordinal);
    private ChannelReader<Core.BindingEvent>? _events;
    private CancellationTokenRegistration _stopping;

    public int OpenStreams => _sessions.Count;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Subscribe before the server accepts its first call, so no change goes unseen.
        _events = table.Subscribe();
        _stopping = lifetime.ApplicationStopping.Register(NotifyShutdown);
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.DisposeAsync();
        await base.StopAsync(cancellationToken);
    }

    /// <summary>Tracks an open heartbeat stream (told at once if the host is already stopping).</summary>
    public void Add(HeartbeatSession session)
    {
        _sessions.TryAdd(session, 0);
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            session.NotifyAndClose(ShuttingDownNotice());
        }
    }

    public void Remove(HeartbeatSession session) => _sessions.TryRemove(session, out _);

    /// <summary>True (with the reason) if <paramref name="bindingId"/> of <paramref name="identity"/> was replaced by another device.</summary>
    public bool WasReplaced(string identity, string bindingId, out string reason)
    {
        reason = "";
        if (_replaced.TryGetValue(bindingId, out var r) && r.Identity == identity)
        {
            reason = r.Reason;
            return true;
        }

        return false;
    }

    public static HeartbeatReply ShuttingDownNotice() => new()
    {
        Notice = HeartbeatReply.Types.Notice.ShuttingDown,
        Reason = "the home agent is shutting down; bindings survive a restart within their lifetime: reconnect and heartbeat when it is back",
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        ChannelReader<Core.BindingEvent> events = _events!;
        try
        {
            await foreach (Core.BindingEvent e in events.ReadAllAsync(stoppingToken))
            {
                Handle(e);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            table.Unsubscribe(events);
        }
    }

    private void Handle(Core.BindingEvent e)
    {
        Core.Binding b = e.Binding;
        if (e.Change == BindingChange.Refreshed)
        {
            Log.BindingRefreshed(logger, b.Identity, b.HomeAddress.ToString(), b.ExpiresAt, b.Id);
            return;
        }

        Log.BindingChanged(logger, e.Change.ToString(), b.Identity, b.DeviceId, b.HomeAddress.ToString(), b.CareOfAddress.ToString(), b.Encapsulation == Core.Encapsulation.IpipUdp ? "ipip-in-UDP" : "ipip", (int)b.Lifetime.TotalSeconds, b.Id);
        switch (e.Change)
        {
            case BindingChange.Replaced when e.Previous is { } old:
                string reason = $"device '{b.DeviceId}' of {b.Identity} registered {b.HomeAddress} from {b.CareOfAddress}: this device's binding is replaced; do not register again unless the user asks";
                Remember(old, reason);
                Tell(old.Id, HeartbeatReply.Types.Notice.BindingReplaced, reason);
                break;
            case BindingChange.Expired:
                Tell(b.Id, HeartbeatReply.Types.Notice.Reregister,
                    string.Create(CultureInfo.InvariantCulture, $"binding of {b.HomeAddress} expired: no heartbeat arrived within its {(int)b.Lifetime.TotalSeconds} s lifetime; register again"));
                break;
            case BindingChange.Deregistered:
                foreach (HeartbeatSession s in _sessions.Keys.Where(s => s.BindingId == b.Id))
                {
                    s.BindingId = null;
                }

                break;
        }
    }

    private void Tell(string bindingId, HeartbeatReply.Types.Notice notice, string reason)
    {
        foreach (HeartbeatSession s in _sessions.Keys)
        {
            if (s.BindingId != bindingId)
            {
                continue;
            }

            s.BindingId = null;
            if (s.TryNotify(new HeartbeatReply { Notice = notice, Reason = reason, BindingId = bindingId }))
            {
                Log.NoticeSent(logger, notice.ToString(), s.Identity, bindingId, reason);
            }
            else
            {
                Log.NoticeDropped(logger, notice.ToString(), s.Identity);
            }
        }
    }

    private void Remember(Core.Binding old, string reason)
    {
        if (_replaced.Count >= ReplacedMemory)
        {
            foreach (string id in _replaced.OrderBy(kv => kv.Value.At).Take(ReplacedMemory / 4).Select(kv => kv.Key).ToList())
            {
                _replaced.TryRemove(id, out _);
            }
        }

        _replaced[old.Id] = (old.Identity, reason, time.GetUtcNow());
    }

    private void NotifyShutdown()
    {
        Log.ShuttingDown(logger, _sessions.Count);
        foreach (HeartbeatSession s in _sessions.Keys)
        {
            s.NotifyAndClose(ShuttingDownNotice());
        }
    }
}
