using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MobilityAgents.Netlink;

namespace MobilityAgents.EndToEnd.Tests;

/// <summary>
/// A laptop roaming between a public visited network and two networks behind real NAT (nftables
/// masquerade), with real daemons: the home agent must notice the NAT (the control connection's
/// source is not the care-of address the laptop reports), grant ipip-in-UDP, learn each NAT
/// mapping from the laptop's authenticated keepalives, and go back to plain ipip on the public
/// network. A LAN host pings the home address every 20 ms and holds a TCP connection to it
/// throughout. Topology (namespaces "ma-t-nat-XXXXXX-*", removed on dispose):
/// <code>
///  lan eth0 192.0.2.100 -- lan0 192.0.2.1 gw wan0 198.51.100.1 -- wan 198.51.100.254 net
///    net a0 203.0.113.1/26   -- e1 203.0.113.10 lap (public)
///    net n1 203.0.113.65/26  -- out 203.0.113.66 nat1 (masquerade) in 10.1.0.1 -- e2 10.1.0.10 lap
///    net n2 203.0.113.129/26 -- out 203.0.113.130 nat2 (masquerade) in 10.2.0.1 -- e3 10.2.0.10 lap
/// </code>
/// On this host (no ipip module) both daemons pick the userspace datapath by themselves; in the
/// kernel VM the same scenario runs with the kernel datapath for plain ipip and the userspace one
/// for UDP.
/// </summary>
public sealed class NatTraversalTests(ITestOutputHelper output)
{
    private const string Prefix = "ma-t-nat-";
    private const string Outer = "198.51.100.1";
    private const string Home = "192.0.2.77";
    private const string LanHost = "192.0.2.100";
    private const int TcpPort = 7778;

    private static readonly (string Dev, string Address, string Router, string Public, bool Nat)[] Networks =
    [
        ("e1", "203.0.113.10", "203.0.113.1", "203.0.113.10", false),
        ("e2", "10.1.0.10", "10.1.0.1", "203.0.113.66", true),
        ("e3", "10.2.0.10", "10.2.0.1", "203.0.113.130", true),
    ];

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [Fact]
    public Task A_laptop_moving_between_NATs_and_a_public_network_stays_reachable_on_the_userspace_datapath() =>
        RunAsync(kernel: false, TimeSpan.FromSeconds(60));

    [Fact]
    [Trait("Kernel", "ipip")]
    public Task A_laptop_moving_between_NATs_and_a_public_network_stays_reachable_on_the_kernel_datapath() =>
        RunAsync(kernel: true, TimeSpan.FromSeconds(240));

    private async Task RunAsync(bool kernel, TimeSpan timeout)
    {
        string tag = Prefix + Guid.NewGuid().ToString("N")[..6];
        TestPki? pki = null;
        ChildProcess? ha = null, alice = null, ping = null;
        Socket? listener = null, client = null, server = null;
        try
        {
            await Shell.RunAsync(Setup(tag));
            Say($"topology up: {tag}-{{lan,gw,net,nat1,nat2,lap}}");
            pki = new TestPki(IPAddress.Parse(Outer));
            string haConfig = pki.Write("home-agent.json", $$"""
                {
                  "Listen": "{{Outer}}:4433", "Certificate": "{{pki.ServerPem}}", "PrivateKey": "{{pki.ServerKey}}", "ClientCa": "{{pki.CaPem}}",
                  "HomePrefix": "192.0.2.0/24", "OuterAddress": "{{Outer}}", "LanInterface": "lan0",
                  "KeepaliveIntervalSeconds": 5, "Authorizations": { "alice": ["{{Home}}"] }
                }
                """);
            string aliceConfig = pki.Write("alice.json", $$"""
                {
                  "HomeAgent": "https://{{Outer}}:4433", "Certificate": "{{pki.AlicePem}}", "PrivateKey": "{{pki.AliceKey}}",
                  "Ca": "{{pki.CaPem}}", "DeviceId": "alice-laptop", "LifetimeSeconds": 30
                }
                """);
            string dotnet = RoamingTests.DotnetHost();
            ha = ChildProcess.Start("home-agent", tag + "-gw", dotnet, [RoamingTests.Daemon("home-agent", "MobilityAgents.HomeAgent.dll"), "--config", haConfig]);
            alice = ChildProcess.Start("alice", tag + "-lap", dotnet, [RoamingTests.Daemon("mobile-agent", "MobilityAgents.MobileAgent.dll"), "--config", aliceConfig]);
            string expected = kernel ? "Datapath kernel" : "Datapath userspace";
            Say("home agent: " + await ha.WaitForLineAsync(l => l.Contains("Datapath ", StringComparison.Ordinal), timeout, "the datapath choice (event 1404)"));
            Assert.Contains(ha.Lines, l => l.Contains(expected, StringComparison.Ordinal));
            Say("alice: " + await alice.WaitForLineAsync(l => l.Contains("Registered home address", StringComparison.Ordinal), timeout, "registration (event 2100)"));
            Assert.Contains(alice.Lines, l => l.Contains(expected, StringComparison.Ordinal));
            Assert.Contains("over ipip:", alice.Lines.Last(l => l.Contains("Registered home address", StringComparison.Ordinal)), StringComparison.Ordinal);

            ping = ChildProcess.Start("ping", tag + "-lan", "bash", ["-c", $"exec stdbuf -oL ping -n -D -i 0.02 {Home}"]);
            await ping.WaitUntilAsync(l => PingReply.Parse(l).Any(), timeout, "replies from the home address over plain ipip");
            Say($"LAN host pings {Home}: answered over plain ipip from the public network");

            using NetworkNamespace lap = NetworkNamespace.OpenByName(tag + "-lap");
            using NetworkNamespace lan = NetworkNamespace.OpenByName(tag + "-lan");
            listener = lap.Run(() =>
            {
                var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                l.Bind(new IPEndPoint(IPAddress.Parse(Home), TcpPort));
                l.Listen(1);
                return l;
            });
            client = lan.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            Task<Socket> accepting = listener.AcceptAsync(TestContext.Current.CancellationToken).AsTask();
            await client.ConnectAsync(new IPEndPoint(IPAddress.Parse(Home), TcpPort), TestContext.Current.CancellationToken).AsTask().WaitAsync(timeout, TestContext.Current.CancellationToken);
            server = await accepting.WaitAsync(timeout, TestContext.Current.CancellationToken);
            await RoamingTests.EchoAsync(client, server, "on the public network");

            var learned = new List<string>();
            foreach (int to in new[] { 1, 2, 0 })
            {
                int haMark = ha.Lines.Count, aliceMark = alice.Lines.Count;
                int before = PingReply.Parse(ping.Lines).Count;
                double t0 = await MoveAsync(tag, to);
                var net = Networks[to];
                string registered = await alice.WaitForLineAsync(l => l.Contains($"at care-of {net.Address}", StringComparison.Ordinal), timeout, $"registration from {net.Address}", aliceMark);
                Assert.Contains(net.Nat ? "over ipip-in-UDP" : "over ipip:", registered, StringComparison.Ordinal);
                if (net.Nat)
                {
                    string endpoint = await ha.WaitForLineAsync(l => l.Contains($"behind NAT is at {net.Public}:", StringComparison.Ordinal), timeout, $"the NAT mapping at {net.Public} learned", haMark);
                    learned.Add(endpoint);
                    Assert.Contains(ha.Lines.Skip(haMark), l => l.Contains($"NAT between alice and us: it reports care-of {net.Address}, its connection comes from {net.Public}", StringComparison.Ordinal));
                }

                await ping.WaitUntilAsync(l => PingReply.Parse(l).Skip(before).Any(r => r.Time > t0), timeout, $"ping replies after the move to {net.Address}");
                PingReply first = PingReply.Parse(ping.Lines).Skip(before).First(r => r.Time > t0);
                PingReply? last = PingReply.Parse(ping.Lines).Take(before).Cast<PingReply?>().LastOrDefault();
                double gap = first.Time - (last?.Time ?? t0);
                Say(string.Create(CultureInfo.InvariantCulture, $"HANDOVER GAP {(kernel ? "kernel" : "userspace")} -> {net.Address}{(net.Nat ? " (NAT " + net.Public + ", ipip-in-UDP)" : " (public, ipip)")}: {gap * 1000:0} ms (last reply before the move to first after)"));
                await RoamingTests.EchoAsync(client, server, "after the move to " + net.Address);
                Say($"TCP connection {client.LocalEndPoint} -> {Home}:{TcpPort} still carries data after the move to {net.Address}");
            }

            Assert.Equal(2, learned.Count);
            Say("NAT mappings learned from authenticated keepalives:\n  " + string.Join("\n  ", learned));
            Assert.Equal(0, await StopAsync(alice));
            Assert.Equal(0, await StopAsync(ha));
            string left = await Shell.RunAsync($"ip -n {tag}-gw -o link show | grep -c ': ma' || true; ip -n {tag}-gw neigh show proxy | grep -c . || true; ip -n {tag}-lap -o link show | grep -c ': ma' || true");
            Assert.Equal("0\n0\n0", left.Trim());
            Say("clean stops: no tunnel link, route or proxy entry left in the gateway or the laptop");
        }
        catch (Exception e)
        {
            Say($"===== FAILED after {_clock.Elapsed.TotalSeconds:0.0} s: {e.Message}");
            foreach (ChildProcess? p in new[] { ha, alice, ping })
            {
                if (p is not null)
                {
                    Say($"===== {p}:\n{p.Tail(p.Name == "ping" ? 10 : 120)}");
                }
            }

            throw;
        }
        finally
        {
            client?.Dispose();
            server?.Dispose();
            listener?.Dispose();
            foreach (ChildProcess? p in new[] { ping, alice, ha })
            {
                if (p is not null)
                {
                    await p.DisposeAsync();
                }
            }

            pki?.Dispose();
            await Shell.RunAsync($"for n in lan gw net nat1 nat2 lap; do ip netns del {tag}-$n 2>/dev/null; done; true", check: false);
        }
    }

    private static async Task<int> StopAsync(ChildProcess p)
    {
        p.Signal(15);
        return await p.ExitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>The laptop leaves whatever network it is on and joins network <paramref name="to"/>; returns the wall-clock time (as ping -D prints it).</summary>
    private static async Task<double> MoveAsync(string tag, int to)
    {
        var n = Networks[to];
        string downs = string.Join("\n", Networks.Where(x => x.Dev != n.Dev).Select(x => $"link set {x.Dev} down"));
        string output = await Shell.RunAsync($"""
            t0=$(date +%s.%N)
            ip -n {tag}-lap -batch - <<EOF
            {downs}
            link set {n.Dev} up
            route replace default via {n.Router}
            EOF
            echo "$t0"
            """);
        return double.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    private static string Setup(string p) => $$"""
        P={{p}}
        for n in lan gw net nat1 nat2 lap; do ip netns add $P-$n; ip -n $P-$n link set lo up; done
        ip -n $P-gw link add lan0 type veth peer name eth0 netns $P-lan
        ip -n $P-gw link add wan0 type veth peer name wan netns $P-net
        ip -n $P-net link add a0 type veth peer name e1 netns $P-lap
        ip -n $P-net link add n1 type veth peer name out netns $P-nat1
        ip -n $P-net link add n2 type veth peer name out netns $P-nat2
        ip -n $P-nat1 link add in type veth peer name e2 netns $P-lap
        ip -n $P-nat2 link add in type veth peer name e3 netns $P-lap
        ip -n $P-lan -batch - <<EOF
        addr add {{LanHost}}/24 dev eth0
        link set eth0 up
        route add default via 192.0.2.1
        EOF
        ip -n $P-gw -batch - <<EOF
        addr add 192.0.2.1/24 dev lan0
        link set lan0 up
        addr add {{Outer}}/24 dev wan0
        link set wan0 up
        route add default via 198.51.100.254
        EOF
        ip -n $P-net -batch - <<EOF
        addr add 198.51.100.254/24 dev wan
        link set wan up
        addr add 203.0.113.1/26 dev a0
        link set a0 up
        addr add 203.0.113.65/26 dev n1
        link set n1 up
        addr add 203.0.113.129/26 dev n2
        link set n2 up
        EOF
        for i in 1 2; do
          o=$([ $i = 1 ] && echo 203.0.113.66 || echo 203.0.113.130)
          g=$([ $i = 1 ] && echo 203.0.113.65 || echo 203.0.113.129)
          ip -n $P-nat$i -batch - <<EOF
        addr add $o/26 dev out
        link set out up
        addr add 10.$i.0.1/24 dev in
        link set in up
        route add default via $g
        EOF
          ip netns exec $P-nat$i nft -f - <<EOF
        table ip nat {
          chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            oifname "out" masquerade
          }
        }
        EOF
        done
        ip -n $P-lap -batch - <<EOF
        addr add 203.0.113.10/26 dev e1
        addr add 10.1.0.10/24 dev e2
        addr add 10.2.0.10/24 dev e3
        link set e1 up
        route add default via 203.0.113.1
        EOF
        for n in gw net nat1 nat2; do ip netns exec $P-$n sysctl -qw net.ipv4.ip_forward=1; done
        ip netns exec $P-lap ping -q -c 1 -W 10 {{Outer}} >/dev/null
        """;

    private void Say(string message)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"[nat +{_clock.Elapsed.TotalSeconds,6:0.0}s] {message}");
        Console.WriteLine(line);
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
        }
    }
}
