using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace MobilityAgents.Core.Tests;

public sealed class BindingTableTests : IDisposable
{
    private static readonly IPAddress Alice1 = IPAddress.Parse("192.0.2.77");
    private static readonly IPAddress Alice2 = IPAddress.Parse("192.0.2.78");
    private static readonly IPAddress Bob1 = IPAddress.Parse("192.0.2.80");
    private static readonly IPAddress CareOfA = IPAddress.Parse("198.51.100.10");
    private static readonly IPAddress CareOfB = IPAddress.Parse("203.0.113.20");

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 0, 0, 0, TimeSpan.Zero));
    private readonly BindingTable _table;

    public BindingTableTests()
    {
        var policy = new AuthorizationPolicy(new Dictionary<string, IReadOnlyList<IPAddress>>
        {
            ["alice"] = [Alice1, Alice2],
            ["bob"] = [Bob1],
        });
        _table = new BindingTable(_time, policy, BindingTableOptions.For(IPNetwork.Parse("192.0.2.0/24")));
    }

    public void Dispose() => _table.Dispose();

    private static List<BindingEvent> Drain(ChannelReader<BindingEvent> r)
    {
        var l = new List<BindingEvent>();
        while (r.TryRead(out BindingEvent? e))
        {
            l.Add(e);
        }

        return l;
    }

    [Fact]
    public void Register_without_home_address_gets_the_first_authorized_one_and_the_default_lifetime()
    {
        Binding b = _table.Register("alice", "laptop", CareOfA, null, null);
        Assert.Equal(Alice1, b.HomeAddress);
        Assert.Equal(CareOfA, b.CareOfAddress);
        Assert.Equal(ProtocolTimers.DefaultLifetime, b.Lifetime);
        Assert.Equal(_time.GetUtcNow() + ProtocolTimers.DefaultLifetime, b.ExpiresAt);
        Assert.Equal(32, b.Id.Length);
        Assert.Same(b, _table.GetByHomeAddress(Alice1));
    }

    [Theory]
    [InlineData(1, 10)]          // below the minimum: raised
    [InlineData(30, 30)]
    [InlineData(86_400, 3_600)]  // above the maximum: capped
    public void Requested_lifetime_is_clamped(int requestedSeconds, int grantedSeconds)
    {
        Binding b = _table.Register("alice", "laptop", CareOfA, Alice1, TimeSpan.FromSeconds(requestedSeconds));
        Assert.Equal(TimeSpan.FromSeconds(grantedSeconds), b.Lifetime);
    }

    [Fact]
    public void An_identity_cannot_claim_an_address_it_is_not_authorized_for()
    {
        var e = Assert.Throws<BindingRefusedException>(() => _table.Register("alice", "laptop", CareOfA, Bob1, null));
        Assert.Equal(RefusalReason.NotAuthorized, e.Reason);
        Assert.Equal("identity alice is not authorized for 192.0.2.80", e.Message);
        var unknown = Assert.Throws<BindingRefusedException>(() => _table.Register("mallory", "x", CareOfA, null, null));
        Assert.Equal(RefusalReason.NotAuthorized, unknown.Reason);
        Assert.Equal(0, _table.Count);
    }

    [Theory]
    [InlineData("0.0.0.0", "care-of address 0.0.0.0 is not a unicast address")]
    [InlineData("255.255.255.255", "care-of address 255.255.255.255 is not a unicast address")]
    [InlineData("224.0.0.5", "care-of address 224.0.0.5 is not a unicast address")]
    [InlineData("127.0.0.1", "care-of address 127.0.0.1 is not a unicast address")]
    [InlineData("169.254.1.1", "care-of address 169.254.1.1 is a link-local address, not reachable from the home agent")]
    [InlineData("2001:db8::1", "care-of address 2001:db8::1 is not an IPv4 address")]
    public void Unusable_care_of_addresses_are_refused_with_the_reason(string careOf, string message)
    {
        var e = Assert.Throws<BindingRefusedException>(() => _table.Register("alice", "laptop", IPAddress.Parse(careOf), null, null));
        Assert.Equal(RefusalReason.InvalidCareOfAddress, e.Reason);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void A_care_of_address_on_the_home_network_means_the_laptop_is_home()
    {
        var e = Assert.Throws<BindingRefusedException>(() => _table.Register("alice", "laptop", IPAddress.Parse("192.0.2.200"), null, null));
        Assert.Equal(RefusalReason.AtHome, e.Reason);
    }

    [Fact]
    public void A_home_address_outside_the_home_prefix_is_invalid()
    {
        var e = Assert.Throws<BindingRefusedException>(() => _table.Register("alice", "laptop", CareOfA, IPAddress.Parse("203.0.113.5"), null));
        Assert.Equal(RefusalReason.InvalidHomeAddress, e.Reason);
    }

    [Fact]
    public void Registering_from_a_new_care_of_address_moves_the_binding_and_keeps_its_id()
    {
        ChannelReader<BindingEvent> events = _table.Subscribe();
        Binding first = _table.Register("alice", "laptop", CareOfA, null, null);
        _time.Advance(TimeSpan.FromSeconds(20));
        Binding moved = _table.Register("alice", "laptop", CareOfB, null, null);
        Assert.Equal(first.Id, moved.Id);
        Assert.Equal(CareOfB, moved.CareOfAddress);
        Assert.Equal(_time.GetUtcNow() + moved.Lifetime, moved.ExpiresAt);
        List<BindingEvent> seen = Drain(events);
        Assert.Equal([BindingChange.Created, BindingChange.Moved], seen.Select(e => e.Change));
        Assert.Equal(CareOfA, seen[1].Previous!.CareOfAddress);
    }

    [Fact]
    public void Another_device_of_the_same_identity_replaces_the_binding_and_the_old_id_is_dead()
    {
        ChannelReader<BindingEvent> events = _table.Subscribe();
        Binding laptop = _table.Register("alice", "laptop", CareOfA, Alice1, null);
        Binding phone = _table.Register("alice", "phone", CareOfB, Alice1, null);
        Assert.NotEqual(laptop.Id, phone.Id);
        List<BindingEvent> seen = Drain(events);
        Assert.Equal(BindingChange.Replaced, seen[^1].Change);
        Assert.Equal(laptop, seen[^1].Previous);
        var e = Assert.Throws<BindingRefusedException>(() => _table.Refresh("alice", laptop.Id));
        Assert.Equal(RefusalReason.UnknownBinding, e.Reason);
        Assert.Equal(1, _table.Count);
    }

    [Fact]
    public void No_identity_can_refresh_or_drop_another_identitys_binding()
    {
        Binding alice = _table.Register("alice", "laptop", CareOfA, null, null);
        Assert.Equal(RefusalReason.UnknownBinding, Assert.Throws<BindingRefusedException>(() => _table.Deregister("bob", alice.Id)).Reason);
        Assert.Equal(RefusalReason.UnknownBinding, Assert.Throws<BindingRefusedException>(() => _table.Refresh("bob", alice.Id)).Reason);
        Assert.NotNull(_table.GetByHomeAddress(Alice1));
    }

    [Fact]
    public void A_binding_expires_after_its_lifetime_unless_refreshed()
    {
        ChannelReader<BindingEvent> events = _table.Subscribe();
        Binding a = _table.Register("alice", "laptop", CareOfA, Alice1, TimeSpan.FromSeconds(30));
        Binding b = _table.Register("bob", "laptop", CareOfB, null, TimeSpan.FromSeconds(30));
        _time.Advance(TimeSpan.FromSeconds(20));
        _table.Refresh("alice", a.Id);                 // alice now lives until t=50
        _time.Advance(TimeSpan.FromSeconds(11));       // t=31: bob's expired by the table's own timer
        Assert.Null(_table.GetByHomeAddress(Bob1));
        Assert.NotNull(_table.GetByHomeAddress(Alice1));
        _time.Advance(TimeSpan.FromSeconds(19));       // t=50
        Assert.Null(_table.GetByHomeAddress(Alice1));
        List<BindingEvent> seen = Drain(events);
        Assert.Equal([BindingChange.Created, BindingChange.Created, BindingChange.Refreshed, BindingChange.Expired, BindingChange.Expired], seen.Select(e => e.Change));
        Assert.Equal(b.Id, seen[3].Binding.Id);
        Assert.Equal(a.Id, seen[4].Binding.Id);
    }

    [Fact]
    public void Deregistration_removes_the_binding_and_publishes_it()
    {
        ChannelReader<BindingEvent> events = _table.Subscribe();
        Binding a = _table.Register("alice", "laptop", CareOfA, null, null);
        _table.Deregister("alice", a.Id);
        Assert.Equal(0, _table.Count);
        Assert.Equal(BindingChange.Deregistered, Drain(events)[^1].Change);
        _time.Advance(TimeSpan.FromHours(2));          // its stale expiry entry fires nothing
        Assert.Empty(Drain(events));
    }

    [Fact]
    public void A_subscriber_can_start_with_the_existing_bindings()
    {
        _table.Register("alice", "laptop", CareOfA, null, null);
        _table.Register("bob", "laptop", CareOfB, null, null);
        List<BindingEvent> seen = Drain(_table.Subscribe(includeExisting: true));
        Assert.Equal(2, seen.Count);
        Assert.All(seen, e => Assert.Equal(BindingChange.Created, e.Change));
    }

    [Fact]
    public void Restore_brings_back_only_unexpired_authorized_bindings()
    {
        DateTimeOffset now = _time.GetUtcNow();
        TimeSpan l = TimeSpan.FromSeconds(60);
        Binding live = new("a1", "alice", "laptop", Alice1, CareOfA, Encapsulation.Ipip, now - l / 2, now + l / 2, l);
        Binding expired = new("a2", "alice", "laptop", Alice2, CareOfA, Encapsulation.Ipip, now - l * 2, now - l, l);
        Binding stolen = new("m1", "mallory", "x", Bob1, CareOfA, Encapsulation.Ipip, now, now + l, l);
        Assert.Equal(1, _table.Restore([live, expired, stolen]));
        Assert.Equal(live, _table.GetByHomeAddress(Alice1));
        _time.Advance(l / 2);
        Assert.Equal(0, _table.Count);
    }

    [Fact]
    public void Ten_thousand_bindings_expire_on_one_timer()
    {
        var grants = new Dictionary<string, IReadOnlyList<IPAddress>>();
        for (int i = 0; i < 10_000; i++)
        {
            grants[$"user{i}"] = [new IPAddress(new byte[] { 10, 1, (byte)(i >> 8), (byte)i })];
        }

        using var table = new BindingTable(_time, new AuthorizationPolicy(grants), BindingTableOptions.For(IPNetwork.Parse("10.1.0.0/16")));
        for (int i = 0; i < 10_000; i++)
        {
            table.Register($"user{i}", "d", CareOfA, null, TimeSpan.FromSeconds(30 + (i % 60)));
        }

        Assert.Equal(10_000, table.Count);
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(10_000 - (31 * 10_000 / 60), table.Count, tolerance: 200);
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public void An_address_authorized_for_two_identities_is_refused_at_load()
    {
        var e = Assert.Throws<ArgumentException>(() => new AuthorizationPolicy(new Dictionary<string, IReadOnlyList<IPAddress>>
        {
            ["alice"] = [Alice1],
            ["bob"] = [Alice1],
        }));
        Assert.Contains("192.0.2.77 is authorized for both alice and bob", e.Message, StringComparison.Ordinal);
    }
}
