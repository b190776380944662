using Microsoft.Extensions.Time.Testing;

namespace MobilityAgents.Reconciler.Tests;

public class RateLimiterTests
{
    [Fact]
    public void One_grant_per_interval_with_the_time_left_until_the_next()
    {
        var time = new FakeTimeProvider();
        var limiter = new ReassertRateLimiter(time, TimeSpan.FromSeconds(1));

        Assert.True(limiter.TryAcquire(out TimeSpan wait));
        Assert.Equal(TimeSpan.Zero, wait);
        Assert.False(limiter.TryAcquire(out wait));
        Assert.Equal(TimeSpan.FromSeconds(1), wait);

        time.Advance(TimeSpan.FromMilliseconds(600));
        Assert.False(limiter.TryAcquire(out wait));
        Assert.Equal(TimeSpan.FromMilliseconds(400), wait);

        time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.True(limiter.TryAcquire(out _));
        Assert.False(limiter.TryAcquire(out _));
    }

    [Fact]
    public void A_zero_interval_always_grants()
    {
        var limiter = new ReassertRateLimiter(new FakeTimeProvider(), TimeSpan.Zero);
        Assert.True(limiter.TryAcquire(out _));
        Assert.True(limiter.TryAcquire(out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReassertRateLimiter(TimeProvider.System, TimeSpan.FromSeconds(-1)));
    }
}
