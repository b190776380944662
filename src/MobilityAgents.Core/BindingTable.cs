using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading.Channels;

namespace MobilityAgents.Core;

/// <summary>Settings of the binding table.</summary>
/// <param name="HomePrefix">The home network (e.g. 192.0.2.0/24): home addresses lie in it, care-of addresses do not.</param>
/// <param name="DefaultLifetime">Granted when the laptop asks for none.</param>
/// <param name="MinimumLifetime">Shortest lifetime granted.</param>
/// <param name="MaximumLifetime">Longest lifetime granted.</param>
public sealed record BindingTableOptions(IPNetwork HomePrefix, TimeSpan DefaultLifetime, TimeSpan MinimumLifetime, TimeSpan MaximumLifetime)
{
    public static BindingTableOptions For(IPNetwork homePrefix) =>
        new(homePrefix, ProtocolTimers.DefaultLifetime, ProtocolTimers.MinimumLifetime, ProtocolTimers.MaximumLifetime);
}

/// <summary>
/// The home agent's bindings: who is where, until when. Thread-safe. Time comes from a
/// <see cref="TimeProvider"/> (lifetimes, expiry timer), so tests drive it with a fake clock.
/// Every change is published as a <see cref="BindingEvent"/> to each subscriber, in order; the
/// kernel reconciler is one subscriber, WatchBindings streams are others.
/// </summary>
public sealed class BindingTable : IDisposable
{
    private readonly TimeProvider _time;
    private readonly AuthorizationPolicy _policy;
    private readonly BindingTableOptions _options;
    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, Binding> _byHome = [];
    private readonly Dictionary<string, Binding> _byId = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, DateTimeOffset> _expiry = new(); // lazy: stale entries skipped
    private readonly List<Channel<BindingEvent>> _subscribers = [];
    private readonly ITimer _timer;
    private bool _disposed;

    public BindingTable(TimeProvider time, AuthorizationPolicy policy, BindingTableOptions options)
    {
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _policy = policy ?? throw new ArgumentNullException(nameof(policy));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _timer = _time.CreateTimer(_ => ExpireDue(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Number of live bindings.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byHome.Count;
            }
        }
    }

    /// <summary>
    /// A new subscriber's event stream. With <paramref name="includeExisting"/>, the current
    /// bindings come first as Created events (atomically with the subscription: nothing is missed).
    /// Complete it with <see cref="Unsubscribe"/>.
    /// </summary>
    public ChannelReader<BindingEvent> Subscribe(bool includeExisting = false)
    {
        var ch = Channel.CreateUnbounded<BindingEvent>(new UnboundedChannelOptions { SingleWriter = true });
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (includeExisting)
            {
                foreach (Binding b in _byHome.Values)
                {
                    ch.Writer.TryWrite(new BindingEvent(BindingChange.Created, b));
                }
            }

            _subscribers.Add(ch);
        }

        return ch.Reader;
    }

    /// <summary>
    /// A new subscriber's event stream and, atomically with it, the bindings live at that moment
    /// in <paramref name="existing"/>: every later change is in the stream, none before it is.
    /// For consumers that tell existing bindings apart from new ones (WatchBindings' EXISTING).
    /// Complete it with <see cref="Unsubscribe"/>.
    /// </summary>
    public ChannelReader<BindingEvent> Subscribe(out IReadOnlyList<Binding> existing)
    {
        var ch = Channel.CreateUnbounded<BindingEvent>(new UnboundedChannelOptions { SingleWriter = true });
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            existing = [.. _byHome.Values];
            _subscribers.Add(ch);
        }

        return ch.Reader;
    }

    /// <summary>Ends a subscription.</summary>
    public void Unsubscribe(ChannelReader<BindingEvent> reader)
    {
        lock (_lock)
        {
            int i = _subscribers.FindIndex(c => c.Reader == reader);
            if (i >= 0)
            {
                _subscribers[i].Writer.TryComplete();
                _subscribers.RemoveAt(i);
            }
        }
    }

    /// <summary>
    /// Registers (creates, refreshes, moves or replaces) the binding of <paramref name="identity"/>'s
    /// device. Throws <see cref="BindingRefusedException"/> with a reason a user can act on.
    /// </summary>
    public Binding Register(string identity, string deviceId, IPAddress careOf, IPAddress? requestedHome, TimeSpan? requestedLifetime, Encapsulation encapsulation = Encapsulation.Ipip)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(careOf);
        deviceId ??= "";
        ValidateCareOf(careOf);
        IPAddress home = ChooseHome(identity, requestedHome);
        TimeSpan lifetime = GrantLifetime(requestedLifetime);
        DateTimeOffset now = _time.GetUtcNow();

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            BindingEvent ev;
            if (_byHome.TryGetValue(home, out Binding? old))
            {
                if (old.Identity != identity)
                {
                    // Authorization is exclusive, so this only happens after a policy change: never take it over.
                    throw new BindingRefusedException(RefusalReason.HeldByAnotherIdentity, $"home address {home} is held by another identity");
                }

                if (old.DeviceId == deviceId)
                {
                    Binding renewed = old with { CareOfAddress = careOf, Encapsulation = encapsulation, ExpiresAt = now + lifetime, Lifetime = lifetime };
                    bool moved = !old.CareOfAddress.Equals(careOf) || old.Encapsulation != encapsulation;
                    ev = new BindingEvent(moved ? BindingChange.Moved : BindingChange.Refreshed, renewed, old);
                }
                else
                {
                    Binding replacement = new(NewId(), identity, deviceId, home, careOf, encapsulation, now, now + lifetime, lifetime);
                    ev = new BindingEvent(BindingChange.Replaced, replacement, old);
                    _byId.Remove(old.Id);
                }
            }
            else
            {
                ev = new BindingEvent(BindingChange.Created, new Binding(NewId(), identity, deviceId, home, careOf, encapsulation, now, now + lifetime, lifetime));
            }

            Store(ev.Binding);
            Publish(ev);
            return ev.Binding;
        }
    }

    /// <summary>Refreshes a binding's lifetime (a heartbeat). The binding must belong to <paramref name="identity"/>.</summary>
    public Binding Refresh(string identity, string bindingId)
    {
        lock (_lock)
        {
            Binding old = Owned(identity, bindingId);
            Binding renewed = old with { ExpiresAt = _time.GetUtcNow() + old.Lifetime };
            Store(renewed);
            Publish(new BindingEvent(BindingChange.Refreshed, renewed, old));
            return renewed;
        }
    }

    /// <summary>Ends a binding of <paramref name="identity"/>. Throws if there is no such binding for it.</summary>
    public Binding Deregister(string identity, string bindingId)
    {
        lock (_lock)
        {
            Binding old = Owned(identity, bindingId);
            Remove(old);
            Publish(new BindingEvent(BindingChange.Deregistered, old));
            return old;
        }
    }

    /// <summary>The binding carrying a home address, if live.</summary>
    public Binding? GetByHomeAddress(IPAddress home)
    {
        lock (_lock)
        {
            return _byHome.GetValueOrDefault(home);
        }
    }

    /// <summary>The live bindings of an identity.</summary>
    public IReadOnlyList<Binding> GetByIdentity(string identity)
    {
        lock (_lock)
        {
            return [.. _byHome.Values.Where(b => b.Identity == identity)];
        }
    }

    /// <summary>A snapshot of every live binding.</summary>
    public IReadOnlyList<Binding> List()
    {
        lock (_lock)
        {
            return [.. _byHome.Values];
        }
    }

    /// <summary>
    /// Restores bindings persisted before a restart: those still unexpired and still authorized come
    /// back (as Created events); the rest are dropped. Returns how many were restored.
    /// </summary>
    public int Restore(IEnumerable<Binding> persisted)
    {
        ArgumentNullException.ThrowIfNull(persisted);
        DateTimeOffset now = _time.GetUtcNow();
        int n = 0;
        lock (_lock)
        {
            foreach (Binding b in persisted)
            {
                if (b.ExpiresAt > now && _policy.IsAuthorized(b.Identity, b.HomeAddress) && !_byHome.ContainsKey(b.HomeAddress))
                {
                    Store(b);
                    Publish(new BindingEvent(BindingChange.Created, b));
                    n++;
                }
            }
        }

        return n;
    }

    /// <summary>Removes every binding whose lifetime has passed (also run by the table's own timer).</summary>
    public void ExpireDue()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            DateTimeOffset now = _time.GetUtcNow();
            while (_expiry.TryPeek(out string? id, out DateTimeOffset at) && at <= now)
            {
                _expiry.Dequeue();
                if (_byId.TryGetValue(id, out Binding? b) && b.ExpiresAt <= now)
                {
                    Remove(b);
                    Publish(new BindingEvent(BindingChange.Expired, b));
                }
            }

            ArmTimer(now);
        }
    }

    private Binding Owned(string identity, string bindingId)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Another identity's binding is reported exactly like a missing one: ids are not an oracle.
        return _byId.TryGetValue(bindingId ?? "", out Binding? b) && b.Identity == identity
            ? b
            : throw new BindingRefusedException(RefusalReason.UnknownBinding, $"no binding {bindingId} for {identity}: register again");
    }

    private void Store(Binding b)
    {
        _byHome[b.HomeAddress] = b;
        _byId[b.Id] = b;
        _expiry.Enqueue(b.Id, b.ExpiresAt);
        ArmTimer(_time.GetUtcNow());
    }

    private void Remove(Binding b)
    {
        _byHome.Remove(b.HomeAddress);
        _byId.Remove(b.Id);
    }

    private void ArmTimer(DateTimeOffset now)
    {
        // Drop stale heads (refreshed or removed bindings) so the timer aims at a real expiry.
        while (_expiry.TryPeek(out string? id, out DateTimeOffset at) &&
               (!_byId.TryGetValue(id, out Binding? b) || b.ExpiresAt != at))
        {
            _expiry.Dequeue();
        }

        TimeSpan due = _expiry.TryPeek(out _, out DateTimeOffset next)
            ? (next <= now ? TimeSpan.Zero : next - now)
            : Timeout.InfiniteTimeSpan;
        _timer.Change(due, Timeout.InfiniteTimeSpan);
    }

    private void Publish(BindingEvent e)
    {
        foreach (Channel<BindingEvent> s in _subscribers)
        {
            s.Writer.TryWrite(e);
        }
    }

    private IPAddress ChooseHome(string identity, IPAddress? requested)
    {
        IReadOnlyList<IPAddress> allowed = _policy.AddressesOf(identity);
        if (requested is null || requested.Equals(IPAddress.Any))
        {
            return allowed.Count > 0
                ? allowed[0]
                : throw new BindingRefusedException(RefusalReason.NotAuthorized, $"identity {identity} is not authorized for any home address");
        }

        if (requested.AddressFamily != AddressFamily.InterNetwork || !_options.HomePrefix.Contains(requested))
        {
            throw new BindingRefusedException(RefusalReason.InvalidHomeAddress, $"home address {requested} is not in the home prefix {_options.HomePrefix}");
        }

        return _policy.IsAuthorized(identity, requested)
            ? requested
            : throw new BindingRefusedException(RefusalReason.NotAuthorized, $"identity {identity} is not authorized for {requested}");
    }

    private TimeSpan GrantLifetime(TimeSpan? requested)
    {
        TimeSpan l = requested is { } r && r > TimeSpan.Zero ? r : _options.DefaultLifetime;
        return l < _options.MinimumLifetime ? _options.MinimumLifetime : l > _options.MaximumLifetime ? _options.MaximumLifetime : l;
    }

    private void ValidateCareOf(IPAddress a)
    {
        string? problem = null;
        if (a.AddressFamily != AddressFamily.InterNetwork)
        {
            problem = "not an IPv4 address";
        }
        else
        {
            byte[] b = a.GetAddressBytes();
            if (a.Equals(IPAddress.Any) || a.Equals(IPAddress.Broadcast) || b[0] == 0 || b[0] == 127 || b[0] >= 224)
            {
                problem = "not a unicast address";
            }
            else if (b[0] == 169 && b[1] == 254)
            {
                problem = "a link-local address, not reachable from the home agent";
            }
        }

        if (problem is not null)
        {
            throw new BindingRefusedException(RefusalReason.InvalidCareOfAddress, $"care-of address {a} is {problem}");
        }

        if (_options.HomePrefix.Contains(a))
        {
            throw new BindingRefusedException(RefusalReason.AtHome, $"care-of address {a} is on the home network {_options.HomePrefix}: the laptop is home, deregister instead");
        }
    }

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _timer.Dispose();
            foreach (Channel<BindingEvent> s in _subscribers)
            {
                s.Writer.TryComplete();
            }

            _subscribers.Clear();
        }
    }
}
