using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// The mobile agent's reconciler with the real classic ipip link, in the kernel VM
/// (<c>tests/kernel-vm/run-dotnet-tests.sh ... -trait "Kernel=ipip"</c>), the talk's topology:
/// <code>
///  laptop                          router                         home agent
///  vis0 10.1.0.2/24  ----------  v1 10.1.0.1/24                   (visited network 1)
///  vis1 10.2.0.2/24  ----------  v2 10.2.0.1/24                   (visited network 2)
///                                lan 172.110.4.254/24  -------  eth0 172.110.4.238/24 (home LAN)
///                                lo 10.9.9.9/32 (a server on the internet)
///  ma-tun0 ipip 10.x.0.2 -> 172.110.4.238 ===================  gwtun ipip -> care-of,
///                                                                  172.110.4.180/32 dev gwtun,
///                                                                  proxy ARP 172.110.4.180 on eth0
/// </code>
/// The home agent's side is set up by the test with the library, as the recipe's gateway steps.
/// Lean: .NET under TCG is slow, so each test does a whole scenario and shells out little.
/// </summary>
[Trait("Kernel", "ipip")]
public sealed class MobileAgentIpipVmTests
{
    private static readonly IPAddress Home = IPAddress.Parse("172.110.4.180");
    private static readonly IPAddress HomeAgent = IPAddress.Parse("172.110.4.238");

    private static MobileAgentState State(int visited) =>
        new(IPAddress.Parse($"10.{visited}.0.2"), HomeAgent, Home, IPNetwork.Parse("172.110.4.0/24"))
        {
            VisitedGateway = IPAddress.Parse($"10.{visited}.0.1"),
            HomePrefixThroughTunnel = true,
        };

    private static string GatewayDev(IPAddress gw) => gw.ToString() == "10.1.0.1" ? "vis0" : "vis1";

    [Fact]
    public void Tunnel_CarriesTheHomeAddress_SurvivesAMoveInPlace_AndTearsDownCompletely()
    {
        using var lab = new IpipLab();
        var reconciler = new MobileAgentReconciler(lab.Laptop.Handle);

        MobileAgentState at1 = State(1);
        MobileAgentReached r1 = reconciler.Apply(at1);
        Assert.Empty(r1.Errors);
        Assert.Equal(at1, r1.State);
        Assert.Equal(MobileAgentRender.Expected(at1, "ipip", GatewayDev), MobileAgentRender.Marked(lab.Laptop));
        // The whole home prefix through the tunnel (source: the home address), and from the home address to anywhere.
        lab.PingFromLaptop();

        // The laptop moves to visited network 2: its DHCP replaces the default route and the old address goes.
        lab.Laptop.Handle.Routes.Replace(new RouteEntry { Gateway = IPAddress.Parse("10.2.0.1"), Protocol = RtnetlinkConstants.RTPROT_STATIC });
        int vis0 = lab.Laptop.Handle.Links.IndexOf("vis0");
        lab.Laptop.Handle.Addresses.Delete(new AddressEntry { InterfaceIndex = vis0, Local = IPAddress.Parse("10.1.0.2"), PrefixLength = 24 });
        MobileAgentState at2 = State(2);
        MobileAgentReached r2 = reconciler.Apply(at2);
        Assert.Empty(r2.Errors);
        Assert.Equal(at2, r2.State);
        Assert.Equal(r1.TunnelIndex, r2.TunnelIndex); // changed in place: same link
        Assert.Equal(MobileAgentRender.Expected(at2, "ipip", GatewayDev), MobileAgentRender.Marked(lab.Laptop));
        lab.HomeAgentFollows(IPAddress.Parse("10.2.0.2"));
        lab.PingFromLaptop();

        MobileAgentReached down = reconciler.Apply(null);
        Assert.Empty(down.Errors);
        Assert.Empty(MobileAgentRender.Marked(lab.Laptop));
    }

    [Fact]
    public async Task TcpPorts_ThroughTheRealTunnel_LeaveWithTheHomeAddress()
    {
        using var lab = new IpipLab();
        var reconciler = new MobileAgentReconciler(lab.Laptop.Handle);
        MobileAgentState s = State(1) with { HomePrefixThroughTunnel = false, TcpPorts = [25] };
        MobileAgentReached r = reconciler.Apply(s);
        Assert.Empty(r.Errors);
        Assert.Equal(s, r.State);

        Assert.Equal(Home, await lab.SourceSeenByServer(25));
        Assert.Equal(IPAddress.Parse("10.1.0.2"), await lab.SourceSeenByServer(80));

        Assert.Empty(reconciler.Apply(null).Errors);
        Assert.Empty(MobileAgentRender.Marked(lab.Laptop));
    }

    /// <summary>The three namespaces and the home agent's half of the tunnel.</summary>
    private sealed class IpipLab : IDisposable
    {
        private readonly List<IDisposable> _owned = [];

        public IpipLab()
        {
            try
            {
                Laptop = Own(new MobileAgentTestNamespace());
                Router = Own(new MobileAgentTestNamespace());
                HomeAgent = Own(new MobileAgentTestNamespace());
                Wire(Laptop, "vis0", "10.1.0.2/24", Router, "v1", "10.1.0.1/24");
                Wire(Laptop, "vis1", "10.2.0.2/24", Router, "v2", "10.2.0.1/24");
                Wire(Router, "lan", "172.110.4.254/24", HomeAgent, "eth0", "172.110.4.238/24");
                UpWithAddress(Router, "lo", "10.9.9.9/32");
                Sysctl.SetIpForward(Router.Namespace, true);
                Laptop.Handle.Routes.Add(new RouteEntry { Gateway = IPAddress.Parse("10.1.0.1"), Protocol = RtnetlinkConstants.RTPROT_STATIC });

                // The recipe's gateway side: ipip to the care-of address, the home address routed into it,
                // proxy ARP for it on the LAN, forwarding on; its default route via the home LAN's router.
                RouteNetlink h = HomeAgent.Handle;
                h.Routes.Add(new RouteEntry { Gateway = IPAddress.Parse("172.110.4.254"), Protocol = RtnetlinkConstants.RTPROT_STATIC });
                h.Links.AddIpip("gwtun", new IpipParameters { Local = IPAddress.Parse("172.110.4.238"), Remote = IPAddress.Parse("10.1.0.2"), Ttl = 64 }, mtu: 1480);
                int tun = h.Links.IndexOf("gwtun");
                h.Links.SetUp(tun);
                h.Routes.Add(new RouteEntry { Destination = Home, DestinationPrefixLength = 32, OutputInterface = tun, Protocol = RtnetlinkConstants.RTPROT_STATIC });
                h.Neighbours.Add(new NeighbourEntry { InterfaceIndex = h.Links.IndexOf("eth0"), Destination = Home, Proxy = true });
                Sysctl.SetIpForward(HomeAgent.Namespace, true);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public MobileAgentTestNamespace Laptop { get; } = null!;

        public MobileAgentTestNamespace Router { get; } = null!;

        public MobileAgentTestNamespace HomeAgent { get; } = null!;

        /// <summary>The home agent re-points its tunnel at the laptop's new care-of address (its reconciler's job, by hand here).</summary>
        public void HomeAgentFollows(IPAddress careOf) => HomeAgent.Handle.Links.SetIpipRemote("gwtun", careOf);

        /// <summary>One shell for both pings (each process start costs under TCG): a home-LAN host, then a server from the home address.</summary>
        public void PingFromLaptop()
        {
            (int rc, string stdout, string stderr) = Laptop.Sh("ping -n -c 1 -W 10 172.110.4.254 && ping -n -c 1 -W 10 -I 172.110.4.180 10.9.9.9");
            Assert.True(rc == 0, $"ping through the tunnel failed ({rc}): {stdout} {stderr}\n{Laptop.Ip("-s", "link", "show")}");
        }

        public async Task<IPAddress> SourceSeenByServer(int port)
        {
            TcpListener listener = Router.Namespace.Run(() =>
            {
                var l = new TcpListener(IPAddress.Parse("10.9.9.9"), port);
                l.Start();
                return l;
            });
            try
            {
                using Socket client = Laptop.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
                cts.CancelAfter(TimeSpan.FromSeconds(60));
                Task<Socket> accept = listener.AcceptSocketAsync(cts.Token).AsTask();
                await client.ConnectAsync(new IPEndPoint(IPAddress.Parse("10.9.9.9"), port), cts.Token);
                using Socket accepted = await accept;
                return ((IPEndPoint)accepted.RemoteEndPoint!).Address;
            }
            finally
            {
                listener.Stop();
            }
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
}
