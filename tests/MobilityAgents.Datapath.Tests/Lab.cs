using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace MobilityAgents.Datapath.Tests;

/// <summary>
/// Two namespaces joined by a veth pair: a home agent (198.51.100.1 on h0) and a laptop
/// (203.0.113.10 on l0), each routing the other's /24 onto the link. Removed on dispose.
/// </summary>
public sealed class TwoHosts : IDisposable
{
    public static readonly IPAddress HomeOuter = IPAddress.Parse("198.51.100.1");
    public static readonly IPAddress LaptopOuter = IPAddress.Parse("203.0.113.10");
    public static readonly IPAddress HomeInner = IPAddress.Parse("192.0.2.1");
    public static readonly IPAddress LaptopHome = IPAddress.Parse("192.0.2.77");
    public const ushort HomePort = 5555;

    public TwoHosts()
    {
        Home = new TestNamespace();
        try
        {
            Laptop = new TestNamespace();
            try
            {
                Net.Veth(Home, "h0", "198.51.100.1/24", Laptop, "l0", "203.0.113.10/24");
                Home.IpCmd("route", "add", "203.0.113.0/24", "dev", "h0");
                Laptop.IpCmd("route", "add", "198.51.100.0/24", "dev", "l0");
            }
            catch
            {
                Laptop.Dispose();
                throw;
            }
        }
        catch
        {
            Home.Dispose();
            throw;
        }
    }

    public TestNamespace Home { get; }

    public TestNamespace Laptop { get; }

    public static KeepaliveCredentials NewCredentials() => new((ulong)Random.Shared.NextInt64(), Enumerable.Range(0, 32).Select(i => (byte)Random.Shared.Next(256)).ToArray());

    /// <summary>The home agent's engine with a /32 peer for the laptop; 192.0.2.1/32 on its TUN and a route to the home address.</summary>
    public UserspaceTunnel StartHome(OuterEncapsulation encapsulation, KeepaliveCredentials? credentials)
    {
        UserspaceTunnel t = UserspaceTunnel.Start(new UserspaceTunnelOptions
        {
            TunName = "ma-u0",
            Alias = "mobilityagents:userspace",
            LocalAddress = HomeOuter,
            EnableUdp = true,
            UdpPort = HomePort,
            Mtu = encapsulation == OuterEncapsulation.Udp ? 1472 : 1480,
            Namespace = Home.Namespace,
        });
        try
        {
            t.SetPeers([new TunnelPeer
            {
                Id = "laptop",
                Inner = new IPNetwork(LaptopHome, 32),
                OuterAddress = LaptopOuter,
                Encapsulation = encapsulation,
                Keepalive = credentials,
            }]);
            Home.IpCmd("addr", "add", "192.0.2.1/32", "dev", "ma-u0");
            Home.IpCmd("route", "add", "192.0.2.77/32", "dev", "ma-u0");
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>The laptop's engine with the single 0/0 peer; the home address on its TUN and a route to the gateway's inner address.</summary>
    public static UserspaceTunnel StartLaptop(TestNamespace laptop, OuterEncapsulation encapsulation, KeepaliveCredentials? credentials, IPAddress? homeAgent = null)
    {
        UserspaceTunnel t = UserspaceTunnel.Start(new UserspaceTunnelOptions
        {
            TunName = "ma-tun0",
            EnableIpip = encapsulation == OuterEncapsulation.Ipip,
            EnableUdp = encapsulation == OuterEncapsulation.Udp,
            Mtu = encapsulation == OuterEncapsulation.Udp ? 1472 : 1480,
            Namespace = laptop.Namespace,
        });
        try
        {
            t.SetPeers([new TunnelPeer
            {
                Id = "home",
                Inner = new IPNetwork(IPAddress.Any, 0),
                OuterAddress = homeAgent ?? HomeOuter,
                Encapsulation = encapsulation,
                UdpPort = encapsulation == OuterEncapsulation.Udp ? HomePort : (ushort)0,
                Keepalive = credentials,
            }]);
            laptop.IpCmd("addr", "add", "192.0.2.77/32", "dev", "ma-tun0");
            laptop.IpCmd("route", "add", "192.0.2.1/32", "dev", "ma-tun0", "src", "192.0.2.77");
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Laptop.Dispose();
        Home.Dispose();
    }
}

/// <summary>Small helpers over ip, ping, nft and sockets inside namespaces.</summary>
public static partial class Net
{
    public static void Veth(TestNamespace a, string aName, string aAddress, TestNamespace b, string bName, string bAddress)
    {
        a.IpCmd("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name);
        a.IpCmd("addr", "add", aAddress, "dev", aName);
        a.IpCmd("link", "set", aName, "up");
        b.IpCmd("addr", "add", bAddress, "dev", bName);
        b.IpCmd("link", "set", bName, "up");
    }

    /// <summary>Runs a command inside the namespace (<c>ip netns exec</c>); returns exit code and output.</summary>
    public static (int Rc, string Stdout, string Stderr) Exec(TestNamespace ns, params string[] command) => Ip.Exec(["netns", "exec", ns.Name, .. command]);

    /// <summary>Pings and returns how many replies came back.</summary>
    public static int Ping(TestNamespace ns, IPAddress destination, int count = 3)
    {
        (_, string stdout, _) = Exec(ns, "ping", "-n", "-c", count.ToString(System.Globalization.CultureInfo.InvariantCulture), "-i", "0.2", "-W", "2", destination.ToString());
        Match m = Received().Match(stdout);
        return m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"(\d+) (packets )?received")]
    private static partial Regex Received();

    public static void Eventually(Func<bool> condition, string what, double seconds = 10)
    {
        DateTime end = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > end)
            {
                Assert.Fail($"timed out after {seconds} s waiting for: {what}");
            }

            Thread.Sleep(50);
        }
    }

    /// <summary>
    /// A TCP connection from <paramref name="client"/> to a listener on <paramref name="address"/>
    /// in <paramref name="server"/>: <paramref name="bytes"/> each way, checked byte for byte.
    /// </summary>
    public static void Tcp(TestNamespace server, IPAddress address, TestNamespace client, int bytes = 1 << 20)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        TcpListener listener = server.Namespace.Run(() =>
        {
            var l = new TcpListener(address, 0);
            l.Start();
            return l;
        });
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            using TcpClient c = client.Namespace.Run(() => new TcpClient(AddressFamily.InterNetwork));
            Task<TcpClient> accept = listener.AcceptTcpClientAsync(cts.Token).AsTask();
            c.ConnectAsync(address, port, cts.Token).AsTask().GetAwaiter().GetResult();
            using TcpClient s = accept.GetAwaiter().GetResult();
            byte[] up = new byte[bytes];
            byte[] down = new byte[bytes];
            Random.Shared.NextBytes(up);
            Random.Shared.NextBytes(down);
            Task send1 = c.GetStream().WriteAsync(up, cts.Token).AsTask();
            Task send2 = s.GetStream().WriteAsync(down, cts.Token).AsTask();
            byte[] gotUp = new byte[bytes];
            byte[] gotDown = new byte[bytes];
            Task r1 = s.GetStream().ReadExactlyAsync(gotUp, cts.Token).AsTask();
            Task r2 = c.GetStream().ReadExactlyAsync(gotDown, cts.Token).AsTask();
            Task.WaitAll([send1, send2, r1, r2], cts.Token);
            Assert.Equal(up, gotUp);
            Assert.Equal(down, gotDown);
        }
        finally
        {
            listener.Stop();
            listener.Dispose();
        }
    }

    /// <summary>The sum of an nft rule counter's packets in a chain listing.</summary>
    public static long NftPackets(TestNamespace ns, params string[] chain)
    {
        (int rc, string stdout, string stderr) = Exec(ns, ["nft", "list", "chain", .. chain]);
        Assert.True(rc == 0, stderr);
        return Packets().Matches(stdout).Sum(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"packets (\d+)")]
    private static partial Regex Packets();

    public static void Nft(TestNamespace ns, string script)
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, script);
            (int rc, _, string stderr) = Exec(ns, "nft", "-f", file);
            Assert.True(rc == 0, $"nft -f: {stderr}\n{script}");
        }
        finally
        {
            File.Delete(file);
        }
    }
}
