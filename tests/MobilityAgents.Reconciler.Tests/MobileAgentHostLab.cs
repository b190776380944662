using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// The host tests' world, three namespaces wired with veth pairs (through the library):
/// <code>
///  laptop                          gateway                          server
///  vis0 10.1.0.2/24  ----------  v1 10.1.0.1/24                      (visited network 1)
///  vis1 10.2.0.2/24  ----------  v2 10.2.0.1/24                      (visited network 2)
///  ma-tun0 (stand-in) ---------  pma-tun0 (proxy_arp, HOME/32 here)  (the "tunnel")
///                                srv 10.9.0.1/24  -----------------  eth0 10.9.0.2/24
///                                lo 172.110.4.238/32 (the home agent's address, in the home prefix)
/// </code>
/// The laptop's default route is via 10.1.0.1. The reconciler runs on the laptop with the veth
/// stand-in for the ipip link (tests only).
/// </summary>
internal sealed class MobileAgentHostLab : IDisposable
{
    public static readonly IPAddress Home = IPAddress.Parse("172.110.4.180");
    public static readonly IPNetwork HomePrefix = IPNetwork.Parse("172.110.4.0/24");
    public static readonly IPAddress HomeAgent = IPAddress.Parse("172.110.4.238");
    public static readonly IPAddress CareOf1 = IPAddress.Parse("10.1.0.2");
    public static readonly IPAddress Gateway1 = IPAddress.Parse("10.1.0.1");
    public static readonly IPAddress CareOf2 = IPAddress.Parse("10.2.0.2");
    public static readonly IPAddress Gateway2 = IPAddress.Parse("10.2.0.1");
    public static readonly IPAddress ServerAddress = IPAddress.Parse("10.9.0.2");

    private readonly List<IDisposable> _owned = [];

    public MobileAgentHostLab()
    {
        try
        {
            Laptop = Own(new MobileAgentTestNamespace());
            Gateway = Own(new MobileAgentTestNamespace());
            Server = Own(new MobileAgentTestNamespace());
            Wire(Laptop, "vis0", "10.1.0.2/24", Gateway, "v1", "10.1.0.1/24");
            Wire(Laptop, "vis1", "10.2.0.2/24", Gateway, "v2", "10.2.0.1/24");
            Wire(Gateway, "srv", "10.9.0.1/24", Server, "eth0", "10.9.0.2/24");
            Laptop.Handle.Routes.Add(new RouteEntry { Gateway = Gateway1, Protocol = RtnetlinkConstants.RTPROT_STATIC });
            Server.Handle.Routes.Add(new RouteEntry { Gateway = IPAddress.Parse("10.9.0.1"), Protocol = RtnetlinkConstants.RTPROT_STATIC });
            UpWithAddress(Gateway, "lo", "172.110.4.238/32");
            Sysctl.SetIpForward(Gateway.Namespace, true);
            Device = new VethStandInForTestsOnly(Gateway.Namespace, PeerCreated);
            Reconciler = NewReconciler();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public MobileAgentTestNamespace Laptop { get; } = null!;

    public MobileAgentTestNamespace Gateway { get; } = null!;

    public MobileAgentTestNamespace Server { get; } = null!;

    public VethStandInForTestsOnly Device { get; } = null!;

    public MobileAgentTestLogger Logger { get; } = new();

    public MobileAgentReconciler Reconciler { get; } = null!;

    /// <summary>A reconciler as after a restart: a new object, the same kernel (and the same stand-in device).</summary>
    public MobileAgentReconciler NewReconciler() => new(Laptop.Handle, Device, Logger);

    /// <summary>The recipe's basic state on visited network 1: tunnel, home address, the home-address rule and the table's default route.</summary>
    public static MobileAgentState State(int visited = 1) =>
        new MobileAgentState(visited == 1 ? CareOf1 : CareOf2, HomeAgent, Home, HomePrefix)
        {
            VisitedGateway = visited == 1 ? Gateway1 : Gateway2,
        };

    public static ImmutableSortedSet<ushort> Ports(params ushort[] ports) => [.. ports];

    /// <summary>Which laptop interface reaches a visited gateway.</summary>
    public static string GatewayDev(IPAddress gw) => gw.Equals(Gateway1) ? "vis0" : gw.Equals(Gateway2) ? "vis1" : "?";

    public List<string> Expected(MobileAgentState? s) => MobileAgentRender.Expected(s, "veth", GatewayDev);

    public List<string> Marked() => MobileAgentRender.Marked(Laptop);

    /// <summary>Applies and asserts: no error, the reached state is the desired one, the kernel holds exactly it, unmarked objects untouched.</summary>
    public MobileAgentReached ApplyExactly(MobileAgentState? desired, MobileAgentReconciler? reconciler = null)
    {
        List<string> before = MobileAgentRender.Unmarked(Laptop);
        MobileAgentReached r = (reconciler ?? Reconciler).Apply(desired);
        Assert.Empty(r.Errors);
        Assert.Equal(desired, r.State);
        Assert.True(r.Reached(desired));
        Assert.Equal(Expected(desired), Marked());
        Assert.Equal(before, MobileAgentRender.Unmarked(Laptop));
        return r;
    }

    /// <summary>
    /// Connects from the laptop to the server's <paramref name="port"/> and returns the source
    /// address the server sees, with the local address the laptop's socket has.
    /// </summary>
    public async Task<(IPAddress SeenByServer, IPAddress LocalOnLaptop)> Connect(int port)
    {
        TcpListener listener = Server.Namespace.Run(() =>
        {
            var l = new TcpListener(IPAddress.Any, port);
            l.Start();
            return l;
        });
        try
        {
            using Socket client = Laptop.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(15));
            Task<Socket> accept = listener.AcceptSocketAsync(cts.Token).AsTask();
            await client.ConnectAsync(new IPEndPoint(ServerAddress, port), cts.Token);
            using Socket accepted = await accept;
            return (((IPEndPoint)accepted.RemoteEndPoint!).Address, ((IPEndPoint)client.LocalEndPoint!).Address);
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>The home agent's side of the stand-in tunnel: answers ARP for the server, routes the home address back in.</summary>
    private void PeerCreated(string peer)
    {
        Sysctl.SetProxyArp(Gateway.Namespace, peer, true);
        Gateway.Handle.Routes.Replace(new RouteEntry
        {
            Destination = Home,
            DestinationPrefixLength = 32,
            OutputInterface = Gateway.Handle.Links.IndexOf(peer),
            Protocol = RtnetlinkConstants.RTPROT_STATIC,
        });
    }

    private static void Wire(MobileAgentTestNamespace left, string leftName, string leftCidr, MobileAgentTestNamespace right, string rightName, string rightCidr)
    {
        left.Handle.Links.AddVeth(leftName, rightName, right.Namespace);
        UpWithAddress(left, leftName, leftCidr);
        UpWithAddress(right, rightName, rightCidr);
    }

    private static void UpWithAddress(MobileAgentTestNamespace ns, string name, string cidr)
    {
        int index = ns.Handle.Links.IndexOf(name);
        string[] parts = cidr.Split('/');
        ns.Handle.Addresses.Add(new AddressEntry
        {
            InterfaceIndex = index,
            Local = IPAddress.Parse(parts[0]),
            PrefixLength = byte.Parse(parts[1], CultureInfo.InvariantCulture),
        });
        ns.Handle.Links.SetUp(index);
    }

    private T Own<T>(T d)
        where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    public void Dispose()
    {
        foreach (IDisposable d in Enumerable.Reverse(_owned))
        {
            d.Dispose();
        }

        _owned.Clear();
    }
}

/// <summary>Keeps every log entry: (event id, level, message).</summary>
internal sealed class MobileAgentTestLogger : ILogger
{
    private readonly Lock _lock = new();

    public List<(int Id, LogLevel Level, string Message)> Entries { get; } = [];

    /// <summary>The kernel mutations logged (event 2001), in order.</summary>
    public List<string> Mutations
    {
        get
        {
            lock (_lock)
            {
                return [.. Entries.Where(e => e.Id == 2001).Select(e => e.Message)];
            }
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            Entries.Clear();
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lock)
        {
            Entries.Add((eventId.Id, logLevel, formatter(state, exception)));
        }
    }
}
