using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Grpc.Core;
using Grpc.Net.Client;
using MobilityAgents.Netlink;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.HomeAgent.Tests.TestHomeAgent;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>
/// The daemon as a real process: `dotnet MobilityAgents.HomeAgent.dll --config ...`. The daemon
/// programs the kernel of the network namespace it runs in (ip_forward, tunnels, routes, proxy
/// ARP), so every run that gets past configuration validation runs with
/// `ip netns exec ma-t-... dotnet ...` in a fresh namespace of its own (<see cref="TestNamespace"/>),
/// never in the root namespace. The runs that stop at configuration (--help, a bad key) set no
/// LanInterface, so even if they got further the datapath would refuse to start.
/// </summary>
public sealed partial class ProcessTests(TestPki pki)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_bad_key_exits_78_with_a_message_naming_it_and_no_stack_trace()
    {
        string config = WriteConfig("192.0.2.0/33");
        await using Daemon d = Daemon.Start(["--config", config]);
        int code = await d.ExitAsync();

        Assert.Equal(78, code);
        Assert.Contains("HomePrefix: '192.0.2.0/33' is not an IPv4 prefix", d.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", d.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", d.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_prints_every_key_and_exits_0()
    {
        await using Daemon d = Daemon.Start(["--help"]);
        Assert.Equal(0, await d.ExitAsync());
        foreach (string key in Configuration.HomeAgentConfiguration.Keys.Select(k => k.Name))
        {
            Assert.Contains($"  {key} ", d.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_daemon_serves_mTLS_with_environment_and_command_line_overrides_and_stops_cleanly_on_SIGTERM()
    {
        // The file's HomePrefix is wrong; the environment fixes it (environment over file), and the
        // command line sets the MTU over the file's (command line over environment and file).
        string rootForwarding = TestNamespace.RootIpForward();
        string config = WriteConfig("10.0.0.0/33", lanInterface: TestNamespace.Lan, extra: """ "TunnelMtu": 1480, """);
        using TestNamespace ns = TestNamespace.Create();
        await using Daemon d = Daemon.Start(ns, ["--config", config, "--TunnelMtu=1400"], new() { ["MA_HOMEAGENT__HomePrefix"] = "192.0.2.0/24" });
        string address = await d.ListeningAsync();

        using GrpcChannel channel = Channel(address, pki.Ca, pki.Alice, ns.Netns);
        var alice = new Client(channel);
        RegisterReply r = await alice.RegisterAsync(Request(), Call);
        Assert.Equal(Alice1, r.HomeAddress);
        Assert.Equal(1392u, r.TunnelMtu); // 1400 less the UDP header: the connection does not come from the reported care-of address (NAT)
        Assert.Equal("192.0.2.0/24", r.HomePrefix);

        // The datapath ran, in the daemon's namespace: forwarding is switched on for the binding
        // before its tunnel is made (which may then fail where the ipip module is missing: logged
        // as event 1401, not a test failure).
        Assert.Equal("1", await ns.IpForwardBecomesAsync("1"));

        using AsyncDuplexStreamingCall<HeartbeatRequest, HeartbeatReply> hb = alice.Heartbeat(Call);
        await hb.RequestStream.WriteAsync(new HeartbeatRequest { BindingId = r.BindingId }, Ct);
        Assert.Equal(HeartbeatReply.Types.Notice.Refreshed, (await hb.ResponseStream.NextAsync()).Notice);

        using var foreign = Channel(address, pki.Ca, pki.ForeignAlice, ns.Netns);
        RefusalTests.AssertHandshakeRefused(await Assert.ThrowsAsync<RpcException>(() => new Client(foreign).RegisterAsync(Request(), Call).ResponseAsync));

        d.Signal("TERM");
        HeartbeatReply notice = await hb.ResponseStream.NextAsync();
        Assert.Equal(HeartbeatReply.Types.Notice.ShuttingDown, notice.Notice);
        await hb.RequestStream.CompleteAsync();
        Assert.True(await hb.ResponseStream.EndsAsync());

        Assert.Equal(0, await d.ExitAsync());
        Assert.Contains("[1300] Rejected client certificate CN=alice (issuer CN=Some Other CA)", d.Stdout, StringComparison.Ordinal);
        Assert.Contains("[1100] Binding Created: alice device 'laptop' home 192.0.2.77 care-of 198.51.100.10", d.Stdout, StringComparison.Ordinal);
        Assert.Contains("[1004] Shutting down: telling 1 heartbeat stream(s)", d.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", d.Stdout, StringComparison.Ordinal); // no colours when not a terminal
        Assert.Equal(rootForwarding, TestNamespace.RootIpForward()); // the root namespace untouched
    }

    [Fact]
    public async Task A_port_in_use_exits_1_with_the_reason()
    {
        string rootForwarding = TestNamespace.RootIpForward();
        using TestNamespace ns = TestNamespace.Create();
        // The port is taken inside the daemon's namespace (a socket stays in the namespace it was made in).
        using TcpListener taken = ns.Netns.Run(() =>
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return l;
        });
        string port = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        string config = WriteConfig("192.0.2.0/24", listen: $"127.0.0.1:{port}", lanInterface: TestNamespace.Lan);
        await using Daemon d = Daemon.Start(ns, ["--config", config]);
        Assert.Equal(1, await d.ExitAsync());
        Assert.Contains("home-agent: cannot start:", d.Stderr, StringComparison.Ordinal);
        Assert.Contains(port, d.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", d.Stderr, StringComparison.Ordinal);
        Assert.Equal(rootForwarding, TestNamespace.RootIpForward());
    }

    /// <summary>A config file beside the test PKI (relative paths resolve against its folder).</summary>
    private string WriteConfig(string homePrefix, string listen = "127.0.0.1:0", string? lanInterface = null, string extra = "")
    {
        string dir = pki.NewFolder();
        foreach ((string name, string from) in new[] { ("ca.pem", pki.CaPem), ("home-agent.pem", pki.ServerPem), ("home-agent.key", pki.ServerKey) })
        {
            File.Copy(from, Path.Combine(dir, name));
        }

        if (lanInterface is not null)
        {
            extra += $$""" "LanInterface": "{{lanInterface}}", """;
        }

        string file = Path.Combine(dir, "home-agent.json");
        File.WriteAllText(file, $$"""
            {
              {{extra}}
              "Listen": "{{listen}}",
              "HomePrefix": "{{homePrefix}}",
              "Certificate": "home-agent.pem",
              "PrivateKey": "home-agent.key",
              "ClientCa": "ca.pem",
              "OuterAddress": "192.0.2.1",
              "Authorizations": { "alice": ["{{Alice1}}", "{{Alice2}}"], "bob": ["{{Bob1}}"] },
              "Operators": ["mailserver"]
            }
            """);
        return file;
    }

    [GeneratedRegex(@"Listening on (https://\S+)")]
    private static partial Regex ListeningLine();

    /// <summary>
    /// A fresh network namespace for one daemon run: <c>ip netns add ma-t-ha...</c>, loopback up,
    /// and a veth pair made inside it (<see cref="Lan"/> and its peer, both up) for LanInterface.
    /// Deleted on dispose; declare it before the <see cref="Daemon"/> so the daemon is gone first.
    /// </summary>
    private sealed class TestNamespace : IDisposable
    {
        /// <summary>The LanInterface the daemon gets: one end of a veth pair inside the namespace.</summary>
        public const string Lan = "lan0";

        private TestNamespace(string name, NetworkNamespace netns)
        {
            Name = name;
            Netns = netns;
        }

        public string Name { get; }

        /// <summary>For sockets the test makes inside the namespace (the gRPC client's, a listener).</summary>
        public NetworkNamespace Netns { get; }

        public static TestNamespace Create()
        {
            string name = "ma-t-ha" + Guid.NewGuid().ToString("N")[..8];
            Tool.Run("ip", "netns", "add", name);
            try
            {
                Tool.Run("ip", "-n", name, "link", "set", "lo", "up");
                Tool.Run("ip", "-n", name, "link", "add", Lan, "type", "veth", "peer", "name", Lan + "p");
                Tool.Run("ip", "-n", name, "link", "set", Lan, "up");
                Tool.Run("ip", "-n", name, "link", "set", Lan + "p", "up");
                return new TestNamespace(name, NetworkNamespace.OpenByName(name));
            }
            catch
            {
                Tool.TryRun("ip", "netns", "del", name);
                throw;
            }
        }

        /// <summary><c>sysctl -n net.ipv4.ip_forward</c> in the root namespace (the test's own).</summary>
        public static string RootIpForward() => Tool.Run("sysctl", "-n", "net.ipv4.ip_forward").Trim();

        /// <summary><c>ip netns exec NS sysctl -n net.ipv4.ip_forward</c>.</summary>
        public string IpForward() => Tool.Run("ip", "netns", "exec", Name, "sysctl", "-n", "net.ipv4.ip_forward").Trim();

        /// <summary>The namespace's ip_forward once it reads <paramref name="expected"/>, or its last value after <see cref="Timeout"/>.</summary>
        public async Task<string> IpForwardBecomesAsync(string expected)
        {
            DateTime deadline = DateTime.UtcNow + Timeout;
            string value;
            while ((value = IpForward()) != expected && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, TestContext.Current.CancellationToken);
            }

            return value;
        }

        public void Dispose()
        {
            Netns.Dispose();
            Tool.TryRun("ip", "netns", "del", Name);
        }
    }

    /// <summary>ip and sysctl for the test's namespaces (the daemon never runs them).</summary>
    private static class Tool
    {
        public static string Run(string file, params string[] args)
        {
            (int rc, string stdout, string stderr) = Exec(file, args);
            return rc == 0 ? stdout : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({rc}): {stderr.Trim()}");
        }

        public static bool TryRun(string file, params string[] args) => Exec(file, args).Rc == 0;

        private static (int Rc, string Stdout, string Stderr) Exec(string file, string[] args)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
            Task<string> stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout, stderr.Result);
        }
    }

    /// <summary>
    /// The daemon process; killed if a test leaves it running. With a <see cref="TestNamespace"/>
    /// it runs as <c>ip netns exec NS dotnet ...</c> (ip execs dotnet: signals reach the daemon).
    /// </summary>
    private sealed class Daemon : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stdout = new(), _stderr = new();
        private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private Daemon(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    _listening.TrySetException(new InvalidOperationException("the daemon closed its output without listening"));
                    return;
                }

                lock (_stdout)
                {
                    _stdout.AppendLine(e.Data);
                }

                if (ListeningLine().Match(e.Data) is { Success: true } m)
                {
                    _listening.TrySetResult(m.Groups[1].Value);
                }
            };
            _process.ErrorDataReceived += (_, e) =>
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Stdout
        {
            get
            {
                lock (_stdout)
                {
                    return _stdout.ToString();
                }
            }
        }

        public string Stderr
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        /// <summary>Runs the daemon in the test's own namespace: only for runs that stop at configuration.</summary>
        public static Daemon Start(IEnumerable<string> args, Dictionary<string, string>? environment = null) =>
            Start(null, args, environment);

        /// <summary>Runs the daemon inside <paramref name="ns"/>.</summary>
        public static Daemon Start(TestNamespace? ns, IEnumerable<string> args, Dictionary<string, string>? environment = null)
        {
            string dll = Path.Combine(AppContext.BaseDirectory, "MobilityAgents.HomeAgent.dll");
            var psi = new ProcessStartInfo(ns is null ? "dotnet" : "ip")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            if (ns is not null)
            {
                foreach (string a in new[] { "netns", "exec", ns.Name, "dotnet" })
                {
                    psi.ArgumentList.Add(a);
                }
            }

            psi.ArgumentList.Add(dll);
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            foreach (string k in psi.Environment.Keys.Where(k => k.StartsWith("MA_HOMEAGENT__", StringComparison.Ordinal)).ToList())
            {
                psi.Environment.Remove(k);
            }

            foreach ((string k, string v) in environment ?? [])
            {
                psi.Environment[k] = v;
            }

            return new Daemon(Process.Start(psi)!);
        }

        /// <summary>The https:// address from the daemon's "Listening on" log line (event 1000).</summary>
        public async Task<string> ListeningAsync()
        {
            try
            {
                return await _listening.Task.WaitAsync(Timeout, TestContext.Current.CancellationToken);
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                throw new Xunit.Sdk.XunitException($"the daemon did not start listening: {e.Message}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
            }
        }

        public void Signal(string signal)
        {
            using Process kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }

        public async Task<int> ExitAsync()
        {
            await _process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(Timeout, TestContext.Current.CancellationToken);
            _process.WaitForExit(); // drains the redirected output
            return _process.ExitCode;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }

            _process.Dispose();
        }
    }
}
