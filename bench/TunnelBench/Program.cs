// TunnelBench: both ends of the userspace tunnel, in two existing namespaces joined by a veth
// pair (A = 198.51.100.1, B = 198.51.100.2, as bench/tunnel-bench.sh makes them).
//   A: home agent side, TUN ma-u0 192.0.2.1, peer 192.0.2.2/32 (udp: endpoint learned from keepalives)
//   B: laptop side,     TUN ma-tun0 192.0.2.2, peer 0.0.0.0/0 (udp: fixed endpoint A:5555)
// Prints "ready" once packets can flow, runs until SIGTERM/SIGINT or stdin closes, then prints
// both ends' counters.
// usage: TunnelBench --mode ipip|udp --ns-a NAME --ns-b NAME
using System.Net;
using System.Runtime.InteropServices;
using MobilityAgents.Datapath;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

string mode = "ipip", nsA = "", nsB = "";
for (int i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--mode": mode = args[i + 1]; break;
        case "--ns-a": nsA = args[i + 1]; break;
        case "--ns-b": nsB = args[i + 1]; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

if (mode is not ("ipip" or "udp") || nsA.Length == 0 || nsB.Length == 0)
{
    Console.Error.WriteLine("usage: TunnelBench --mode ipip|udp --ns-a NAME --ns-b NAME");
    return 2;
}

bool udp = mode == "udp";
var enc = udp ? OuterEncapsulation.Udp : OuterEncapsulation.Ipip;
int mtu = udp ? 1472 : 1480;
var creds = new KeepaliveCredentials(42, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
using NetworkNamespace a = NetworkNamespace.OpenByName(nsA);
using NetworkNamespace b = NetworkNamespace.OpenByName(nsB);

using UserspaceTunnel home = UserspaceTunnel.Start(new UserspaceTunnelOptions
{
    TunName = "ma-u0", LocalAddress = IPAddress.Parse("198.51.100.1"), EnableIpip = !udp, EnableUdp = udp, UdpPort = 5555, Mtu = mtu, Namespace = a,
});
home.SetPeers([new TunnelPeer { Id = "laptop", Inner = IPNetwork.Parse("192.0.2.2/32"), OuterAddress = IPAddress.Parse("198.51.100.2"), Encapsulation = enc, Keepalive = udp ? creds : null }]);
using UserspaceTunnel laptop = UserspaceTunnel.Start(new UserspaceTunnelOptions
{
    TunName = "ma-tun0", EnableIpip = !udp, EnableUdp = udp, Mtu = mtu, Namespace = b,
});
laptop.SetPeers([new TunnelPeer { Id = "home", Inner = IPNetwork.Parse("0.0.0.0/0"), OuterAddress = IPAddress.Parse("198.51.100.1"), Encapsulation = enc, UdpPort = udp ? (ushort)5555 : (ushort)0, Keepalive = udp ? creds : null }]);

using (RouteNetlink rt = RouteNetlink.Open(a))
{
    rt.Addresses.Add(new AddressEntry { InterfaceIndex = home.TunIndex, Local = IPAddress.Parse("192.0.2.1"), PrefixLength = 32 });
    rt.Routes.Add(new RouteEntry { Destination = IPAddress.Parse("192.0.2.2"), DestinationPrefixLength = 32, OutputInterface = home.TunIndex });
}

using (RouteNetlink rt = RouteNetlink.Open(b))
{
    rt.Addresses.Add(new AddressEntry { InterfaceIndex = laptop.TunIndex, Local = IPAddress.Parse("192.0.2.2"), PrefixLength = 32 });
    rt.Routes.Add(new RouteEntry { Destination = IPAddress.Parse("192.0.2.1"), DestinationPrefixLength = 32, OutputInterface = laptop.TunIndex, PreferredSource = IPAddress.Parse("192.0.2.2") });
}

DateTime deadline = DateTime.UtcNow.AddSeconds(10);
while (udp && home.EndpointOf("laptop") is null)
{
    if (DateTime.UtcNow > deadline)
    {
        Console.Error.WriteLine("the home agent end never learned the laptop's endpoint");
        return 1;
    }

    Thread.Sleep(20);
}

using var stop = new ManualResetEventSlim();
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Set(); });
_ = Task.Run(() =>
{
    Console.In.ReadToEnd();
    stop.Set();
});
Console.WriteLine("ready");
Console.Out.Flush();
stop.Wait();
Console.WriteLine($"home agent end: {home.Counters}");
Console.WriteLine($"laptop end:     {laptop.Counters}");
return 0;
