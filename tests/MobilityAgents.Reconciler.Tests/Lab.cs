using System.Net;
using Microsoft.Extensions.Logging;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// A fake home agent: LAN interface lan0, uplink up0, and an administrator's objects that look
/// like ours in one marker but not both (each must survive everything the reconciler does).
/// </summary>
internal sealed class Lab
{
    public static readonly IPAddress Outer = IPAddress.Parse("198.51.100.1");

    public Lab(bool adminObjects = true)
    {
        Lan = Kernel.AddEthernet("lan0", "02-00-5E-00-53-01");
        Uplink = Kernel.AddEthernet("up0", "02-00-5E-00-53-02");
        if (adminObjects)
        {
            // The name prefix without the alias, the alias without the name prefix, the prefix with someone else's alias.
            Kernel.AddEthernet("ma-admin", "02-00-5E-00-53-03");
            Kernel.AddRaw(new FakeKernel.FakeLink
            {
                Index = 40, Name = "vpn0", Kind = "ipip", Up = true, Mtu = 1480, Alias = "mobilityagents:not-really",
                Ipip = new IpipParameters { Local = Outer, Remote = IPAddress.Parse("198.51.100.250"), Ttl = 64 },
            });
            Kernel.AddRaw(new FakeKernel.FakeLink { Index = 41, Name = "mafia0", Kind = "veth", Up = true, Alias = "someone else's" });
            Kernel.AdminRoute(new RouteEntry { Destination = IPAddress.Parse("10.9.0.0"), DestinationPrefixLength = 16, OutputInterface = Uplink, Protocol = RTPROT_STATIC });
            Kernel.AdminRoute(new RouteEntry { Destination = IPAddress.Parse("203.0.113.0"), DestinationPrefixLength = 24, Gateway = IPAddress.Parse("198.51.100.254"), OutputInterface = Uplink });
            // Protocol 77 through a link that is not ours (the mobile agent marks its routes the same way).
            Kernel.AdminRoute(new RouteEntry { Destination = IPAddress.Parse("192.0.2.250"), DestinationPrefixLength = 32, OutputInterface = Uplink, Protocol = 77 });
            Kernel.AdminRoute(new RouteEntry { Destination = IPAddress.Parse("192.0.2.251"), DestinationPrefixLength = 32, OutputInterface = 40, Protocol = 77 });
            Kernel.AdminProxy(new NeighbourEntry { InterfaceIndex = Lan, Destination = IPAddress.Parse("192.0.2.200"), Proxy = true });
            Kernel.AdminProxy(new NeighbourEntry { InterfaceIndex = Uplink, Destination = IPAddress.Parse("192.0.2.201"), Proxy = true, Protocol = RTPROT_STATIC });
        }

        Reconciler = new HomeAgentReconciler(Kernel, Logger);
    }

    public FakeKernel Kernel { get; } = new();

    public TestLogger Logger { get; } = new();

    public HomeAgentReconciler Reconciler { get; }

    public int Lan { get; }

    public int Uplink { get; }

    public static IPAddress Ip(string s) => IPAddress.Parse(s);

    public static HomeAgentTunnel Tunnel(string id, string home, string careOf) => new(id, Ip(home), Ip(careOf));

    public static HomeAgentState State(params HomeAgentTunnel[] tunnels) => new(Outer, "lan0", tunnels);

    /// <summary>Applies and asserts the kernel then holds exactly the desired state (marked) and the administrator's objects unchanged.</summary>
    public HomeAgentReached ApplyExactly(HomeAgentState? desired)
    {
        List<string> admin = Kernel.RenderUnmarked();
        HomeAgentReached r = Reconciler.Apply(desired);
        Assert.Empty(r.Errors);
        Assert.Equal(desired, r.State);
        Assert.True(r.Reached(desired));
        Assert.Equal(FakeKernel.Expected(desired), Kernel.RenderMarked());
        Assert.Equal(admin, Kernel.RenderUnmarked());
        return r;
    }
}

/// <summary>Keeps every log entry: (event id, level, message).</summary>
internal sealed class TestLogger : ILogger<HomeAgentReconciler>
{
    public List<(int Id, LogLevel Level, string Message)> Entries { get; } = [];

    public IEnumerable<string> Mutations => Entries.Where(e => e.Id == 1001).Select(e => e.Message);

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        lock (Entries)
        {
            Entries.Add((eventId.Id, logLevel, formatter(state, exception)));
        }
    }
}
