using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler;

/// <summary>
/// The deletions an Apply in progress is making, so that <c>Concerns</c> can tell the kernel's
/// events for them from someone else's. A <see cref="RouteMonitor"/> thread reads such an event
/// while the Apply still runs, i.e. against the state reached before it, which still has the
/// object: without this, every expiry, deregistration or teardown would look foreign and trigger a
/// re-assert. Each deletion is expected before it is made (its event can be read before the call
/// returns); the expectations are dropped when the Apply publishes what it reached, atomically with
/// that, so an event read later is judged against the new state, which no longer has the object.
/// Thread-safe.
/// </summary>
internal sealed class SelfDeletions
{
    private readonly Lock _lock = new();
    private readonly List<Func<RouteEvent, bool>> _expected = [];

    /// <summary>Marks the deletion events <paramref name="matches"/> accepts as our own until the next <see cref="Publish"/>.</summary>
    public void Expect(Func<RouteEvent, bool> matches)
    {
        lock (_lock)
        {
            _expected.Add(matches);
        }
    }

    /// <summary>Runs <paramref name="publish"/> (storing the new reached state) and drops every expectation, as one step for <see cref="Judge"/>.</summary>
    public void Publish(Action publish)
    {
        lock (_lock)
        {
            publish();
            _expected.Clear();
        }
    }

    /// <summary><paramref name="concerns"/>(e), unless e is a deletion an Apply in progress is making; both under the lock.</summary>
    public bool Judge(RouteEvent routeEvent, Func<RouteEvent, bool> concerns)
    {
        lock (_lock)
        {
            return concerns(routeEvent) && !_expected.Any(m => m(routeEvent));
        }
    }
}
