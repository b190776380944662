namespace MobilityAgents.Reconciler;

/// <summary>
/// At most one re-assertion per <see cref="MinimumInterval"/>, on a <see cref="TimeProvider"/> clock:
/// when someone deletes our objects in a storm (an administrator's flush, a link bouncing), the
/// reconciler runs once at the start and once more after the interval, not once per event.
/// Typical use by the daemon's monitor loop:
/// <code>
/// if (reconciler.Concerns(ev)) {
///     if (limiter.TryAcquire(out TimeSpan wait)) reconciler.Reassert("route deleted");
///     else schedule one Reassert after `wait` (unless one is already scheduled)
/// }
/// </code>
/// Thread-safe.
/// </summary>
public sealed class ReassertRateLimiter
{
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long? _last;

    public ReassertRateLimiter(TimeProvider time, TimeSpan minimumInterval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumInterval, TimeSpan.Zero);
        _time = time ?? throw new ArgumentNullException(nameof(time));
        MinimumInterval = minimumInterval;
    }

    /// <summary>The shortest time between two granted re-assertions.</summary>
    public TimeSpan MinimumInterval { get; }

    /// <summary>
    /// True (and the interval restarts) if the last granted call was at least <see cref="MinimumInterval"/> ago;
    /// otherwise false, with how long until the next call would be granted.
    /// </summary>
    public bool TryAcquire(out TimeSpan retryAfter)
    {
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            if (_last is { } last)
            {
                TimeSpan elapsed = _time.GetElapsedTime(last, now);
                if (elapsed < MinimumInterval)
                {
                    retryAfter = MinimumInterval - elapsed;
                    return false;
                }
            }

            _last = now;
            retryAfter = TimeSpan.Zero;
            return true;
        }
    }
}
