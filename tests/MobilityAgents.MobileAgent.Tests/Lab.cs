using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Grpc.Net.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Netlink;
using MobilityAgents.Protocol.V1;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>
/// Two network namespaces joined by a veth pair, made fresh for one test and removed on dispose
/// even when the test failed (names start with "ma-t-", so run-tests.sh sweeps any a crash left):
/// <code>
///   ma-t-XXXX-l (laptop)                    ma-t-XXXX-g (gateway)
///   lap0 198.51.100.10/24  ====veth====  gw0 198.51.100.1/24, 203.0.113.1/24 (visited networks A, B)
///   default via 198.51.100.1                  192.0.2.0/24 (the home LAN, for a laptop that comes home)
///                                         lo 192.0.2.1/32: the home agent (control endpoint and tunnel end)
/// </code>
/// The home agent daemon runs in the gateway namespace as a child process; the mobile agent runs
/// in this process with Namespace = the laptop namespace and a <see cref="RecordingKernelWriter"/>.
/// Test clients (an operator reading bindings, a second laptop) open their sockets in the gateway
/// namespace. The host's own namespace is never touched.
/// </summary>
public sealed class Lab : IAsyncDisposable
{
    public const string HomeAgentAddress = "192.0.2.1";
    public const string HomePrefix = "192.0.2.0/24";
    public const string AliceHome = "192.0.2.77";
    public const string BobHome = "192.0.2.80";
    public const string CareOfA = "198.51.100.10";
    public const string GatewayA = "198.51.100.1";
    public const string CareOfB = "203.0.113.10";
    public const string GatewayB = "203.0.113.1";

    /// <summary>Bounded waits: nothing here should take longer (lifetimes are 3-6 s).</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(25);

    /// <summary>Short agent timers so reconnects happen within a test's patience.</summary>
    public static readonly AgentTimers FastTimers = new()
    {
        ReconnectBaseDelay = TimeSpan.FromMilliseconds(200),
        ReconnectMaxDelay = TimeSpan.FromSeconds(1),
        ConnectTimeout = TimeSpan.FromSeconds(2),
        RegisterTimeout = TimeSpan.FromSeconds(4),
        KeepAlivePingDelay = TimeSpan.FromSeconds(2),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(2),
    };

    private readonly List<TestAgent> _agents = [];
    private readonly List<GrpcChannel> _channels = [];
    private readonly NetworkNamespace _gatewayNs;
    private readonly string _haConfig;
    private Client? _operator;

    private Lab(TestPki pki, string id, NetworkNamespace gatewayNs)
    {
        Pki = pki;
        Gateway = TestPrefix + id + "-g";
        Laptop = TestPrefix + id + "-l";
        _gatewayNs = gatewayNs;
        _haConfig = Path.Combine(pki.Directory, $"home-agent-{id}.json");
    }

    public const string TestPrefix = "ma-t-";

    public TestPki Pki { get; }

    /// <summary>The gateway namespace's name.</summary>
    public string Gateway { get; }

    /// <summary>The laptop namespace's name.</summary>
    public string Laptop { get; }

    /// <summary>The running home agent, if any.</summary>
    public HomeAgentProcess? HomeAgent { get; private set; }

    /// <summary>Every home agent process started (their logs, for failure reports).</summary>
    public List<HomeAgentProcess> HomeAgents { get; } = [];

    /// <summary>The home agent's port (kept across restarts).</summary>
    public int Port { get; private set; }

    public string Endpoint => string.Create(CultureInfo.InvariantCulture, $"https://{HomeAgentAddress}:{Port}");

    /// <summary>Makes the namespaces and the link; starts the home agent unless told not to.</summary>
    public static async Task<Lab> StartAsync(TestPki pki, bool startHomeAgent = true, int lifetimeSeconds = 6)
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string gw = TestPrefix + id + "-g", lap = TestPrefix + id + "-l";
        Ip.Run("netns", "add", gw);
        NetworkNamespace? gwNs = null;
        try
        {
            Ip.Run("netns", "add", lap);
            Ip.Run("-n", gw, "link", "set", "lo", "up");
            Ip.Run("-n", lap, "link", "set", "lo", "up");
            Ip.Run("-n", gw, "link", "add", "gw0", "type", "veth", "peer", "name", "lap0", "netns", lap);
            Ip.Run("-n", gw, "address", "add", HomeAgentAddress + "/32", "dev", "lo");
            Ip.Run("-n", gw, "address", "add", GatewayA + "/24", "dev", "gw0");
            Ip.Run("-n", gw, "address", "add", GatewayB + "/24", "dev", "gw0");
            Ip.Run("-n", gw, "link", "set", "gw0", "up");
            Ip.Run("-n", gw, "route", "add", HomePrefix, "dev", "gw0"); // the home LAN, for a laptop that comes home
            Ip.Run("-n", lap, "address", "add", CareOfA + "/24", "dev", "lap0");
            Ip.Run("-n", lap, "link", "set", "lap0", "up");
            Ip.Run("-n", lap, "route", "add", "default", "via", GatewayA);
            gwNs = NetworkNamespace.OpenByName(gw);
        }
        catch
        {
            Ip.TryRun("netns", "del", lap);
            Ip.TryRun("netns", "del", gw);
            throw;
        }

        var lab = new Lab(pki, id, gwNs);
        try
        {
            lab.WriteHomeAgentConfig(0, lifetimeSeconds);
            if (startHomeAgent)
            {
                await lab.StartHomeAgentAsync();
            }
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }

        return lab;
    }

    /// <summary>Starts the home agent daemon (on the port of the last one, or a free one the first time).</summary>
    public async Task StartHomeAgentAsync()
    {
        if (Port != 0)
        {
            WriteHomeAgentConfig(Port, null);
        }

        HomeAgent = HomeAgentProcess.Start(Gateway, _haConfig);
        HomeAgents.Add(HomeAgent);
        Port = await HomeAgent.ListeningAsync();
    }

    /// <summary>Fixes the port the home agent will listen on (before it is started: the agent is configured with it).</summary>
    public void UsePort(int port) => Port = port;

    /// <summary>Stops the home agent with <paramref name="signal"/> (TERM: clean, with SHUTTING_DOWN notices; KILL: gone).</summary>
    public async Task StopHomeAgentAsync(string signal = "TERM")
    {
        HomeAgentProcess ha = HomeAgent ?? throw new InvalidOperationException("no home agent running");
        ha.Signal(signal);
        await ha.ExitAsync();
        HomeAgent = null;
    }

    /// <summary>Runs <c>ip -n LAPTOP args</c> (the laptop's network, changed as an independent actor).</summary>
    public string InLaptop(params string[] args) => Ip.Run(["-n", Laptop, .. args]);

    /// <summary>The laptop moves from network A to network B: new address and router first, then the old address goes.</summary>
    public void MoveToB()
    {
        InLaptop("address", "add", CareOfB + "/24", "dev", "lap0");
        InLaptop("route", "replace", "default", "via", GatewayB);
        InLaptop("address", "del", CareOfA + "/24", "dev", "lap0");
    }

    /// <summary>The standard agent configuration (alice, this lab's endpoint), as configuration keys.</summary>
    public Dictionary<string, string?> AgentKeys() => new()
    {
        ["HomeAgent"] = Endpoint,
        ["HomeAgentAddress"] = HomeAgentAddress,
        ["Certificate"] = Pki.AlicePem,
        ["PrivateKey"] = Pki.AliceKey,
        ["Ca"] = Pki.CaPem,
        ["DeviceId"] = "alice-laptop",
        ["LifetimeSeconds"] = "6",
        ["Namespace"] = Laptop,
    };

    /// <summary>Starts a mobile agent in this process (Program's code path) with a recording kernel writer.</summary>
    public async Task<TestAgent> StartAgentAsync(Action<Dictionary<string, string?>>? keys = null, AgentTimers? timers = null, TimeProvider? time = null, RecordingKernelWriter? kernel = null)
    {
        Dictionary<string, string?> k = AgentKeys();
        keys?.Invoke(k);
        IConfiguration config = new ConfigurationBuilder().AddInMemoryCollection(k).Build();
        MobileAgentOptions options = MobileAgentConfiguration.Load(config, Pki.Directory);
        var agent = await TestAgent.StartAsync(options, timers ?? FastTimers, time, kernel);
        _agents.Add(agent);
        return agent;
    }

    /// <summary>A client presenting <paramref name="certificate"/>, its sockets in the gateway namespace.</summary>
    public Client Client(X509Certificate2 certificate)
    {
        X509Certificate2 ca = Pki.Ca;
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            SslOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = SslProtocols.Tls13,
                ClientCertificates = [certificate],
                RemoteCertificateValidationCallback = (_, cert, _, errors) =>
                {
                    if (cert is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build((X509Certificate2)cert);
                },
            },
            ConnectCallback = async (context, ct) =>
            {
                Socket s = _gatewayNs.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        GrpcChannel channel = GrpcChannel.ForAddress(Endpoint, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        _channels.Add(channel);
        return new Client(channel);
    }

    /// <summary>The operator's view (mailserver may read every binding).</summary>
    public async Task<IReadOnlyList<Binding>> BindingsAsync()
    {
        _operator ??= Client(Pki.Mailserver);
        ListBindingsReply r = await _operator.ListBindingsAsync(new ListBindingsRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        return r.Bindings;
    }

    /// <summary>Waits (bounded) until the operator sees bindings satisfying <paramref name="condition"/>.</summary>
    public async Task<IReadOnlyList<Binding>> BindingsWhenAsync(Func<IReadOnlyList<Binding>, bool> condition, string what)
    {
        IReadOnlyList<Binding> last = [];
        await Eventually.Async(async () => condition(last = await BindingsAsync()), () => $"{what}; the home agent has: [{string.Join(", ", last)}]{Report()}");
        return last;
    }

    /// <summary>Everything that helps understand a failure: the agents' and home agents' logs, the recorded kernel states.</summary>
    public string Report()
    {
        var sb = new System.Text.StringBuilder();
        foreach (TestAgent a in _agents)
        {
            sb.AppendLine().AppendLine("--- agent log:").AppendLine(a.Logs.ToString());
            sb.AppendLine("--- recorded kernel states:").AppendLine(a.Kernel.ToString());
        }

        foreach (HomeAgentProcess h in HomeAgents)
        {
            sb.AppendLine("--- home agent stdout:").AppendLine(string.Join(Environment.NewLine,
                h.Stdout.Split('\n').Where(l => !l.Contains("Microsoft.AspNetCore", StringComparison.Ordinal)).TakeLast(60)));
            sb.AppendLine("--- home agent stderr:").AppendLine(h.Stderr);
        }

        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (TestAgent a in _agents)
        {
            await a.DisposeAsync();
        }

        foreach (GrpcChannel c in _channels)
        {
            c.Dispose();
        }

        foreach (HomeAgentProcess h in HomeAgents)
        {
            await h.DisposeAsync();
        }

        _gatewayNs.Dispose();
        Ip.TryRun("netns", "del", Laptop);
        Ip.TryRun("netns", "del", Gateway);
        try
        {
            File.Delete(_haConfig);
        }
        catch (IOException)
        {
        }
    }

    private int _lifetime = 6;

    private void WriteHomeAgentConfig(int port, int? lifetimeSeconds)
    {
        _lifetime = lifetimeSeconds ?? _lifetime;
        var config = new Dictionary<string, object>
        {
            ["Listen"] = string.Create(CultureInfo.InvariantCulture, $"{HomeAgentAddress}:{port}"),
            ["Certificate"] = Pki.ServerPem,
            ["PrivateKey"] = Pki.ServerKey,
            ["ClientCa"] = Pki.CaPem,
            ["HomePrefix"] = HomePrefix,
            ["OuterAddress"] = HomeAgentAddress,
            ["LanInterface"] = "gw0", // its kernel datapath runs too (no ipip module here: it logs what it cannot do)
            ["MinimumLifetimeSeconds"] = 3,
            ["DefaultLifetimeSeconds"] = _lifetime,
            ["Authorizations"] = new Dictionary<string, string[]> { ["alice"] = [AliceHome], ["bob"] = [BobHome] },
            ["Operators"] = new[] { "mailserver" },
            ["LogLevel"] = "Debug",
        };
        File.WriteAllText(_haConfig, JsonSerializer.Serialize(config));
    }
}

/// <summary>A mobile agent host in this process, built by <see cref="MobileAgentHost.Build"/>, with a recording kernel and in-memory logs.</summary>
public sealed class TestAgent : IAsyncDisposable
{
    private readonly Task _run;

    private TestAgent(IHost host, ClientTls tls, NetworkNamespace netns, RecordingKernelWriter kernel, TestLogs logs, MobileAgentOptions options)
    {
        Host = host;
        Tls = tls;
        Netns = netns;
        Kernel = kernel;
        Logs = logs;
        Options = options;
        Agent = host.Services.GetRequiredService<Agent.MobileAgent>();
        _run = host.RunAsync();
    }

    public IHost Host { get; }

    public ClientTls Tls { get; }

    public NetworkNamespace Netns { get; }

    public RecordingKernelWriter Kernel { get; }

    public TestLogs Logs { get; }

    public MobileAgentOptions Options { get; }

    public Agent.MobileAgent Agent { get; }

    /// <summary>The host's run (ends when the agent stops itself or is stopped).</summary>
    public Task Run => _run;

    public static Task<TestAgent> StartAsync(MobileAgentOptions options, AgentTimers timers, TimeProvider? time = null, RecordingKernelWriter? recording = null)
    {
        var tls = ClientTls.Load(options, TimeProvider.System);
        NetworkNamespace netns = MobileAgentHost.OpenNamespace(options);
        RecordingKernelWriter kernel = recording ?? new RecordingKernelWriter();
        var logs = new TestLogs();
        IHost host = MobileAgentHost.Build(options, tls, netns, services =>
        {
            services.AddSingleton<IKernelWriter>(kernel);
            services.AddSingleton(timers);
            if (time is not null)
            {
                services.AddSingleton(time);
            }
            services.AddLogging(l => l.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        });
        return Task.FromResult(new TestAgent(host, tls, netns, kernel, logs, options));
    }

    /// <summary>SIGTERM's path: stop the host and wait for the agent's clean stop.</summary>
    public async Task StopAsync()
    {
        Host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        await _run.WaitAsync(Lab.Timeout, TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_run.IsCompleted)
        {
            Host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
            await _run.WaitAsync(Lab.Timeout, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        Host.Dispose();
        Netns.Dispose();
        Tls.Dispose();
    }
}

/// <summary>Bounded polling.</summary>
public static class Eventually
{
    public static async Task Async(Func<Task<bool>> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Grpc.Core.RpcException) when (sw.Elapsed < (timeout ?? Lab.Timeout))
            {
                // the home agent may be restarting
            }

            if (sw.Elapsed > (timeout ?? Lab.Timeout))
            {
                Assert.Fail($"not within {(timeout ?? Lab.Timeout).TotalSeconds} s: {what()}");
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    public static Task True(Func<bool> condition, Func<string> what, TimeSpan? timeout = null) =>
        Async(() => Task.FromResult(condition()), what, timeout);
}

/// <summary>iproute2 for building and changing the lab (tests only; the product never runs ip).</summary>
public static class Ip
{
    public static string Run(params string[] args)
    {
        (int rc, string stdout, string stderr) = Exec(args);
        return rc == 0 ? stdout : throw new InvalidOperationException($"ip {string.Join(' ', args)} failed ({rc}): {stderr.Trim()}");
    }

    public static bool TryRun(params string[] args) => Exec(args).Rc == 0;

    public static (int Rc, string Stdout, string Stderr) Exec(params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start ip");
        Task<string> err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, err.Result);
    }
}
