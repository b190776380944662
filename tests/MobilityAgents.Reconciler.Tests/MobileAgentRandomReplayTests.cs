using System.Collections.Immutable;
using System.Net;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// Seeded random sequences of desired states (moves, new home addresses and prefixes, MTUs, tunnel
/// renames, every option on and off, teardowns, restarts) against this host's kernel with the veth
/// stand-in: after every Apply the kernel, read with <c>ip -j</c> and <c>nft -j</c>, is exactly the
/// rendering of the desired state, and the administrator's objects are untouched.
/// </summary>
public sealed class MobileAgentRandomReplayTests
{
    private static readonly IPAddress[] Homes = [IPAddress.Parse("172.110.4.180"), IPAddress.Parse("172.110.4.181")];
    private static readonly IPNetwork[] Prefixes = [IPNetwork.Parse("172.110.4.0/24"), IPNetwork.Parse("172.110.4.128/25")];
    private static readonly ushort[] PortChoices = [25, 587, 993];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomReplay_EndsWithTheKernelEqualToTheDesiredState(int seed)
    {
        using var lab = new MobileAgentHostLab();
        lab.Laptop.Ip("rule", "add", "from", "10.2.0.2", "lookup", "100", "priority", "10001");
        lab.Laptop.Ip("route", "add", "10.50.0.0/16", "via", "10.1.0.1", "proto", "static");
        lab.Laptop.Nft("add", "table", "ip", "admin");

        var rnd = new Random(seed);
        MobileAgentReconciler reconciler = lab.Reconciler;
        MobileAgentState? last = null;
        int? lastIndex = null;
        for (int step = 0; step < 25; step++)
        {
            if (rnd.Next(10) == 0)
            {
                reconciler = lab.NewReconciler(); // a restart: the new one adopts what is there
            }

            MobileAgentState? desired = rnd.Next(8) == 0 ? null : RandomState(rnd);
            MobileAgentReached r = lab.ApplyExactly(desired, reconciler);
            if (desired is not null)
            {
                Assert.Equal(lab.Laptop.Handle.Links.IndexOf(desired.TunnelName), r.TunnelIndex);
                if (last is not null && last.TunnelName == desired.TunnelName)
                {
                    Assert.Equal(lastIndex, r.TunnelIndex); // moves and option changes keep the link
                }
            }

            last = desired;
            lastIndex = r.TunnelIndex;
        }

        lab.ApplyExactly(null, reconciler);
        Assert.Contains("rule 10001 from 10.2.0.2 lookup 100", MobileAgentRender.Unmarked(lab.Laptop));
    }

    private static MobileAgentState RandomState(Random rnd)
    {
        int visited = rnd.Next(1, 3);
        IPAddress home = Homes[rnd.Next(Homes.Length)];
        return MobileAgentHostLab.State(visited) with
        {
            HomeAddress = home,
            HomePrefix = Prefixes[rnd.Next(Prefixes.Length)],
            TunnelMtu = rnd.Next(2) == 0 ? 1480 : 1400,
            TunnelName = rnd.Next(4) == 0 ? "ma-tun1" : "ma-tun0",
            HomePrefixThroughTunnel = rnd.Next(2) == 0,
            FwMarkSelection = rnd.Next(2) == 0,
            TcpPorts = [.. PortChoices.Where(_ => rnd.Next(3) == 0)],
        };
    }
}

/// <summary>The state record itself: value equality, validation.</summary>
public sealed class MobileAgentStateTests
{
    private static MobileAgentState S() => MobileAgentHostLab.State();

    [Fact]
    public void Equality_IsByValue_PortsAsASet()
    {
        MobileAgentState a = S() with { TcpPorts = [587, 25] };
        MobileAgentState b = new MobileAgentState(IPAddress.Parse("10.1.0.2"), IPAddress.Parse("172.110.4.238"), IPAddress.Parse("172.110.4.180"), IPNetwork.Parse("172.110.4.0/24"))
        {
            VisitedGateway = IPAddress.Parse("10.1.0.1"),
            TcpPorts = ImmutableSortedSet.Create<ushort>(25, 587),
        };
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, b with { TcpPorts = [25] });
        Assert.NotEqual(a, b with { CareOfAddress = IPAddress.Parse("10.2.0.2") });
        Assert.NotEqual(a, b with { FwMarkSelection = true });
        Assert.Equal("ma-tun0", a.TunnelName);
        Assert.Equal(1480, a.TunnelMtu);
        Assert.True(a.NeedsFwMarkRule);
        Assert.False(S().NeedsFwMarkRule);
        Assert.True((S() with { FwMarkSelection = true }).NeedsFwMarkRule);
    }

    [Fact]
    public void Validate_NamesEveryProblem()
    {
        Assert.Empty(S().Validate());
        Assert.Contains(S().Validate().Concat((S() with { HomeAddress = IPAddress.Parse("192.0.2.1") }).Validate()), p => p.StartsWith("HomePrefix:", StringComparison.Ordinal));
        Assert.Contains((S() with { CareOfAddress = IPAddress.Parse("172.110.4.238") }).Validate(), p => p.StartsWith("CareOfAddress:", StringComparison.Ordinal));
        Assert.Contains((S() with { CareOfAddress = IPAddress.Parse("224.0.0.1") }).Validate(), p => p.StartsWith("CareOfAddress:", StringComparison.Ordinal));
        Assert.Contains((S() with { HomeAgentAddress = IPAddress.IPv6Loopback }).Validate(), p => p.StartsWith("HomeAgentAddress:", StringComparison.Ordinal));
        Assert.Contains((S() with { TunnelMtu = 10 }).Validate(), p => p.StartsWith("TunnelMtu:", StringComparison.Ordinal));
        Assert.Contains((S() with { TunnelName = "tun0" }).Validate(), p => p.StartsWith("TunnelName:", StringComparison.Ordinal));
        Assert.Contains((S() with { TunnelName = "ma-a-very-long-name" }).Validate(), p => p.StartsWith("TunnelName:", StringComparison.Ordinal));
        Assert.Contains((S() with { TunnelName = "ma\"x" }).Validate(), p => p.StartsWith("TunnelName:", StringComparison.Ordinal));
        Assert.Contains((S() with { HomePrefixThroughTunnel = true, VisitedGateway = null }).Validate(), p => p.StartsWith("VisitedGateway:", StringComparison.Ordinal));
        Assert.Contains((S() with { TcpPorts = [0] }).Validate(), p => p.StartsWith("TcpPorts:", StringComparison.Ordinal));
    }
}
