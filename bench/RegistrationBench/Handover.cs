using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Bench.Registration;

/// <summary>
/// The handover measurement, with the real daemons: the home agent in TAG-gw, the mobile agent in
/// TAG-lap, and a LAN host pinging the laptop's home address every few milliseconds while the laptop
/// moves between two visited networks. Needs the ipip module (the kernel VM).
/// <code>
///  TAG-lan  eth0 192.0.2.100/24 ---- lan0 192.0.2.1/24  TAG-gw (home agent; LanInterface lan0)
///                                    out0 bridge 203.0.113.1/24 (outer address, gRPC :4433)
///                                      |- gw-v1 ---- up0 203.0.113.2/24  TAG-v1 (router)  v1-lap 198.51.100.1/24 ---- e1 TAG-lap
///                                      |- gw-v2 ---- up0 203.0.113.3/24  TAG-v2 (router)  v2-lap 10.99.0.1/24    ---- e2 TAG-lap
///  TAG-gw routes 198.51.100.0/24 via 203.0.113.2 and 10.99.0.0/24 via 203.0.113.3.
/// </code>
/// A move is made by the benchmark itself over netlink in the laptop's namespace (no process start
/// between the clock and the change): the old address deleted and its link down, the other link
/// up with its address and default route. The gap is from just before that change to the first
/// echo reply after it; the old link is down, so that reply came through the new path.
/// </summary>
internal sealed partial class Handover : IDisposable
{
    private const string HomeAddress = "192.0.2.77";
    private const string LanHost = "192.0.2.100";
    private const string Outer = "203.0.113.1";
    private static readonly (string Link, string Address, string Gateway)[] Networks =
    [
        ("e1", "198.51.100.10", "198.51.100.1"),
        ("e2", "10.99.0.10", "10.99.0.1"),
    ];

    private readonly Options _o;
    private readonly TextWriter _log;
    private readonly Namespaces _namespaces;
    private readonly Daemon _homeAgent;
    private readonly Daemon _mobileAgent;
    private readonly Daemon _ping;
    private readonly NetworkNamespace _lapNs;
    private readonly RouteNetlink _lap;
    private readonly List<(double Time, int Seq)> _replies = [];
    private int _at; // index into Networks where the laptop is now

    public Handover(Options options, Namespaces namespaces, string workDirectory, TextWriter log, Action<IDisposable> register)
    {
        _o = options;
        _log = log;
        _namespaces = namespaces;
        Directory.CreateDirectory(workDirectory);
        foreach (string role in new[] { "lan", "gw", "v1", "v2", "lap" })
        {
            _ = namespaces.Create(role);
        }

        Tool.RunWithInput("bash", SetupScript(), "-euo", "pipefail", "-s");
        log.WriteLine($"registration-bench: handover topology up in {namespaces.Tag}-{{lan,gw,v1,v2,lap}}");

        using var pki = new Pki(workDirectory, IPAddress.Parse(Outer));
        (string aliceCert, string aliceKey) = pki.WriteClient(pki.Client("alice"), "alice");
        string haConfig = pki.Write("home-agent.json", $$"""
            {
              "Listen": "{{Outer}}:4433",
              "Certificate": "{{pki.ServerPem}}",
              "PrivateKey": "{{pki.ServerKey}}",
              "ClientCa": "{{pki.CaPem}}",
              "HomePrefix": "192.0.2.0/24",
              "OuterAddress": "{{Outer}}",
              "LanInterface": "lan0",
              "Authorizations": { "alice": ["{{HomeAddress}}"] }
            }
            """);
        string maConfig = pki.Write("mobile-agent.json", $$"""
            {
              "HomeAgent": "https://{{Outer}}:4433",
              "HomeAgentAddress": "{{Outer}}",
              "Certificate": "{{aliceCert}}",
              "PrivateKey": "{{aliceKey}}",
              "Ca": "{{pki.CaPem}}",
              "DeviceId": "alice-laptop",
              "LifetimeSeconds": 60
            }
            """);

        var clock = Stopwatch.StartNew();
        string bin = AppContext.BaseDirectory;
        _homeAgent = Daemon.Start("home agent", namespaces.Name("gw"), Path.Combine(bin, "home-agent", "MobilityAgents.HomeAgent.dll"), ["--config", haConfig],
            l => l.Contains("[1100]", StringComparison.Ordinal));
        register(_homeAgent);
        _mobileAgent = Daemon.Start("mobile agent", namespaces.Name("lap"), Path.Combine(bin, "mobile-agent", "MobilityAgents.MobileAgent.dll"), ["--config", maConfig],
            l => l.Contains("[2100]", StringComparison.Ordinal) || l.Contains("[2300]", StringComparison.Ordinal));
        register(_mobileAgent);
        _ = _homeAgent.WaitListening(options.StartTimeout);
        if (_mobileAgent.WaitFor(l => l.Contains($"Registered home address {HomeAddress} at care-of {Networks[0].Address}", StringComparison.Ordinal), 0, options.StartTimeout) is null)
        {
            throw new BenchException($"the mobile agent did not register within {options.StartTimeout.TotalSeconds:0} s; last lines:\n{_mobileAgent.Tail(40)}");
        }

        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registration-bench: home agent and mobile agent up, alice registered after {clock.Elapsed.TotalSeconds:0.0} s"));

        _lapNs = NetworkNamespace.OpenByName(namespaces.Name("lap"));
        _lap = RouteNetlink.Open(_lapNs);

        // The LAN host pings the home address; -D prints each reply's CLOCK_REALTIME time.
        string interval = (options.PingIntervalMs / 1000.0).ToString("0.000", CultureInfo.InvariantCulture);
        _ping = Daemon.Start("ping", namespaces.Name("lan"), "/usr/bin/stdbuf", ["-oL", "ping", "-n", "-D", "-i", interval, HomeAddress], OnPingLine, runDirectly: true);
        register(_ping);
        if (!WaitForReplies(after: Now(), count: 20, options.StartTimeout))
        {
            throw new BenchException($"no steady ping replies from {HomeAddress} before the first move; ping said:\n{_ping.Tail(20)}\nmobile agent:\n{_mobileAgent.Tail(20)}");
        }
    }

    private string SetupScript() => $$"""
        P={{_namespaces.Tag}}
        ip -n $P-gw link add lan0 type veth peer name eth0 netns $P-lan
        ip -n $P-gw link add out0 type bridge
        ip -n $P-gw link add gw-v1 type veth peer name up0 netns $P-v1
        ip -n $P-gw link add gw-v2 type veth peer name up0 netns $P-v2
        ip -n $P-v1 link add v1-lap type veth peer name e1 netns $P-lap
        ip -n $P-v2 link add v2-lap type veth peer name e2 netns $P-lap
        ip -n $P-lan -batch - <<EOF
        addr add {{LanHost}}/24 dev eth0
        link set eth0 up
        route add default via 192.0.2.1
        EOF
        ip -n $P-gw -batch - <<EOF
        addr add 192.0.2.1/24 dev lan0
        link set lan0 up
        link set gw-v1 master out0
        link set gw-v2 master out0
        addr add {{Outer}}/24 dev out0
        link set out0 up
        link set gw-v1 up
        link set gw-v2 up
        route add 198.51.100.0/24 via 203.0.113.2
        route add 10.99.0.0/24 via 203.0.113.3
        EOF
        ip -n $P-v1 -batch - <<EOF
        addr add 203.0.113.2/24 dev up0
        link set up0 up
        addr add 198.51.100.1/24 dev v1-lap
        link set v1-lap up
        EOF
        ip -n $P-v2 -batch - <<EOF
        addr add 203.0.113.3/24 dev up0
        link set up0 up
        addr add 10.99.0.1/24 dev v2-lap
        link set v2-lap up
        EOF
        ip -n $P-lap -batch - <<EOF
        addr add {{Networks[0].Address}}/24 dev e1
        link set e1 up
        route add default via {{Networks[0].Gateway}}
        EOF
        ip netns exec $P-v1 sysctl -qw net.ipv4.ip_forward=1
        ip netns exec $P-v2 sysctl -qw net.ipv4.ip_forward=1
        ip netns exec $P-lap ping -q -c 1 -W 10 {{Outer}} >/dev/null
        """;

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private bool OnPingLine(string line)
    {
        if (PingReply().Match(line) is { Success: true } m)
        {
            lock (_replies)
            {
                _replies.Add((double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)));
            }
        }

        return false;
    }

    private List<(double Time, int Seq)> Replies()
    {
        lock (_replies)
        {
            return [.. _replies];
        }
    }

    private bool WaitForReplies(double after, int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (Replies().Count(r => r.Time > after) >= count)
            {
                return true;
            }

            _ping.ThrowIfExited();
            _mobileAgent.ThrowIfExited();
            _homeAgent.ThrowIfExited();
            Thread.Sleep(10);
        }

        return false;
    }

    /// <summary>One move to the other visited network, measured.</summary>
    public HandoverResult Move(int run, bool warmUp)
    {
        (string Link, string Address, string Gateway) from = Networks[_at], to = Networks[1 - _at];
        int fromIndex = _lap.Links.IndexOf(from.Link), toIndex = _lap.Links.IndexOf(to.Link);
        long mark = Stopwatch.GetTimestamp();

        double t0 = Now();
        _ = _lap.Addresses.Delete(new AddressEntry { InterfaceIndex = fromIndex, Local = IPAddress.Parse(from.Address), PrefixLength = 24 });
        _lap.Links.SetDown(fromIndex);
        _lap.Links.SetUp(toIndex);
        _lap.Addresses.Add(new AddressEntry { InterfaceIndex = toIndex, Local = IPAddress.Parse(to.Address), PrefixLength = 24 });
        _lap.Routes.Add(new RouteEntry { OutputInterface = toIndex, Gateway = IPAddress.Parse(to.Gateway) });
        double t1 = Now();
        _at = 1 - _at;

        if (!WaitForReplies(t1, 1, _o.StartTimeout))
        {
            throw new BenchException($"no ping reply from {HomeAddress} within {_o.StartTimeout.TotalSeconds:0} s of move {run} ({from.Address} -> {to.Address}); mobile agent:\n{_mobileAgent.Tail(30)}\nhome agent:\n{_homeAgent.Tail(30)}");
        }

        List<(double Time, int Seq)> replies = Replies();
        (double Time, int Seq) before = replies.Where(r => r.Time < t0).MaxBy(r => r.Time);
        (double Time, int Seq) first = replies.Where(r => r.Time > t1).MinBy(r => r.Time);
        (long Time, string Line)? moved = _homeAgent.WaitFor(l => l.Contains("Binding Moved", StringComparison.Ordinal) && l.Contains("care-of " + to.Address, StringComparison.Ordinal), mark, TimeSpan.FromSeconds(5));
        (long Time, string Line)? noticed = _mobileAgent.WaitFor(l => l.Contains("[2300]", StringComparison.Ordinal) && l.Contains("-> " + to.Address, StringComparison.Ordinal), mark, TimeSpan.FromSeconds(5));
        (long Time, string Line)? registered = _mobileAgent.WaitFor(l => l.Contains("[2100]", StringComparison.Ordinal) && l.Contains("at care-of " + to.Address + " ", StringComparison.Ordinal), mark, TimeSpan.FromSeconds(5));
        var result = new HandoverResult(run,
            first.Time - t0,
            first.Time - before.Time,
            moved is { } m ? Stopwatch.GetElapsedTime(mark, m.Time).TotalSeconds : null,
            Math.Max(0, first.Seq - before.Seq - 1),
            $"{from.Address} -> {to.Address}",
            noticed is { } n ? Stopwatch.GetElapsedTime(mark, n.Time).TotalSeconds : null,
            registered is { } g ? Stopwatch.GetElapsedTime(mark, g.Time).TotalSeconds : null,
            warmUp);
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"registration-bench: handover {(warmUp ? "warm-up " : "")}{run}: {result.Direction}: gap {result.GapSeconds:0.000} s, ping outage {result.OutageSeconds:0.000} s, {result.Lost} echo requests lost"));

        // Settle: steady replies on the new path before the next move.
        if (!WaitForReplies(first.Time, 50, _o.StartTimeout))
        {
            throw new BenchException($"ping replies did not resume steadily after move {run}; ping said:\n{_ping.Tail(20)}");
        }

        return result;
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"the real home agent and mobile agent; the laptop moves between two visited networks (198.51.100.10 <-> 10.99.0.10, both routed to the home agent's 203.0.113.1); " +
        $"a LAN host pings the home address {HomeAddress} every {_o.PingIntervalMs} ms; gap = address change to the first reply through the new path");

    /// <summary>Stops ping, then the mobile agent (it deregisters), then the home agent.</summary>
    public void Stop()
    {
        _ = _ping.Stop(TimeSpan.FromSeconds(5));
        foreach (Daemon d in new[] { _mobileAgent, _homeAgent })
        {
            int? code = d.Stop(_o.StartTimeout);
            if (code != 0)
            {
                _log.WriteLine($"registration-bench: warning: the {d.Name} {(code is null ? "did not stop on SIGTERM and was killed" : $"exited with {code}")}");
            }
        }
    }

    public void Dispose()
    {
        _ping?.Dispose();
        _mobileAgent?.Dispose();
        _homeAgent?.Dispose();
        _lap?.Dispose();
        _lapNs?.Dispose();
    }

    // "[1700000000.123456] 64 bytes from 192.0.2.77: icmp_seq=5 ttl=63 time=0.512 ms"
    [GeneratedRegex(@"^\[(\d+\.\d+)\] \d+ bytes from [0-9.]+: icmp_seq=(\d+) ")]
    private static partial Regex PingReply();
}
