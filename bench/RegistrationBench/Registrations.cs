using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using MobilityAgents.Protocol.V1;
using HomeAgentClient = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.Bench.Registration;

/// <summary>How the clients reach the home agent.</summary>
internal enum ClientMode
{
    /// <summary>One connection (TCP + TLS 1.3 with its own client certificate) per laptop, made for its registration: what real laptops do.</summary>
    PerLaptop,

    /// <summary>A few connections, opened before the clock starts, shared by all clients: the RPC alone, handshakes amortised.</summary>
    Shared,
}

/// <summary>One laptop: its identity (certificate CN), the home address it claims and the care-of address it registers.</summary>
internal sealed record Laptop(int Index, string Identity, string DeviceId, IPAddress Home, IPAddress CareOf, bool ExplicitHome);

/// <summary>What one timed phase measured.</summary>
internal sealed record PhaseResult(
    ClientMode Mode,
    int Run,
    string Phase,
    int Count,
    double WallSeconds,
    double[] LatenciesMs,
    double? KernelSeconds,
    int KernelCountAtLastReply,
    double DaemonCpuSeconds,
    double? DaemonCpuSecondsWithKernel,
    double ClientCpuSeconds,
    int Applies,
    int KernelErrors,
    int Retries);

/// <summary>
/// The registration benchmark: the home agent daemon (the real process, with its kernel datapath)
/// in namespace TAG-ha, N laptops registering through C concurrent clients, each phase timed.
/// <code>
///   TAG-ha:  lo 127.0.0.1
///            lan0 10.0.0.1/16 (LanInterface: proxy ARP) ---- lan0p
///            out0 203.0.113.1/24 (OuterAddress, the gRPC endpoint :4433) ---- out0p
/// </code>
/// Home prefix 10.0.0.0/16: laptop i (one identity, one certificate each) holds 10.0.(1+i/254).(1+i%254)
/// and registers care-of 10.128.(i/254).(1+i%254); the shared-connection identities ("fleet-k") hold
/// 10.0.(128+i/254).x and register care-of 10.192.x.y. The care-of addresses are only data here:
/// the tunnels point at them but no packet is sent.
/// </summary>
internal sealed class Registrations : IDisposable
{
    public const string LanInterface = "lan0";
    public const string OuterAddress = "203.0.113.1";
    public const int Port = 4433;
    public const uint LifetimeSeconds = 86_400;

    private readonly Options _o;
    private readonly TextWriter _log;
    private readonly Pki _pki;
    private readonly string _ns;
    private readonly Laptop[] _laptops;
    private readonly Laptop[] _fleetLaptops;
    private readonly SslStreamCertificateContext[] _laptopTls;
    private readonly SslStreamCertificateContext[] _fleetTls;
    private readonly Daemon _daemon;
    private readonly NamespaceSockets _sockets;
    private readonly KernelWatch _kernel;
    private readonly string _address;

    public Registrations(Options options, Namespaces namespaces, string workDirectory, bool kernelDatapath, TextWriter log, Action<Daemon> register)
    {
        _o = options;
        _log = log;
        KernelDatapath = kernelDatapath;
        _ns = namespaces.Name("ha");
        int n = options.Laptops;
        int k = options.SharedChannels;

        var clock = Stopwatch.StartNew();
        _pki = new Pki(workDirectory, IPAddress.Parse(OuterAddress));
        _laptops = new Laptop[n];
        _laptopTls = new SslStreamCertificateContext[n];
        _fleetLaptops = new Laptop[n];
        _fleetTls = new SslStreamCertificateContext[k];
        for (int i = 0; i < n; i++)
        {
            string id = "laptop-" + (i + 1).ToString("D5", CultureInfo.InvariantCulture);
            _laptops[i] = new Laptop(i, id, id, Env.Address(10, 0, 1, i), Env.Address(10, 128, 0, i), ExplicitHome: false);
            _laptopTls[i] = Pki.Context(_pki.Client(id));
            _fleetLaptops[i] = new Laptop(i, Fleet(i % k), "fleet-laptop-" + (i + 1).ToString("D5", CultureInfo.InvariantCulture), Env.Address(10, 0, 128, i), Env.Address(10, 192, 0, i), ExplicitHome: true);
        }

        for (int j = 0; j < k; j++)
        {
            _fleetTls[j] = Pki.Context(_pki.Client(Fleet(j)));
        }

        CertificateSeconds = clock.Elapsed.TotalSeconds;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registration-bench: {n + k + 2:N0} certificates (ECDSA P-256) made in {CertificateSeconds:0.00} s"));

        // The home agent's namespace: lo, the LAN veth, the outer veth with the tunnel endpoint.
        namespaces.Create("ha");
        Tool.Batch(_ns,
            $"link add {LanInterface} type veth peer name {LanInterface}p",
            "link add out0 type veth peer name out0p",
            $"addr add 10.0.0.1/16 dev {LanInterface}",
            $"addr add {OuterAddress}/24 dev out0",
            $"link set {LanInterface} up",
            $"link set {LanInterface}p up",
            "link set out0 up",
            "link set out0p up");

        string config = WriteConfig(Path.Combine(workDirectory, "home-agent.json"));
        clock.Restart();
        _daemon = Daemon.Start("home agent", _ns, Path.Combine(AppContext.BaseDirectory, "home-agent", "MobilityAgents.HomeAgent.dll"),
            ["--config", config], l => l.Contains("[1400]", StringComparison.Ordinal) || l.Contains("[1401]", StringComparison.Ordinal));
        register(_daemon);
        _sockets = new NamespaceSockets(_ns);
        if (options.DaemonLogLevel is "Trace" or "Debug" or "Information")
        {
            _address = _daemon.WaitListening(options.StartTimeout);
        }
        else
        {
            // The "Listening on" line (event 1000, Information) is not logged: wait for the port instead.
            _address = $"https://{OuterAddress}:{Port}";
            WaitForPort(options.StartTimeout);
        }

        DaemonStartSeconds = clock.Elapsed.TotalSeconds;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"registration-bench: home agent (pid {_daemon.Pid}) in {_ns} listening on {_address} after {DaemonStartSeconds:0.0} s"));
        _kernel = new KernelWatch(_ns, LanInterface);
    }

    public bool KernelDatapath { get; }

    public double CertificateSeconds { get; }

    public double DaemonStartSeconds { get; }

    public List<PhaseResult> Results { get; } = [];

    private void WaitForPort(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            _daemon.ThrowIfExited();
            using System.Net.Sockets.Socket s = _sockets.CreateAsync().GetAwaiter().GetResult();
            try
            {
                s.Connect(IPAddress.Parse(OuterAddress), Port);
                return;
            }
            catch (System.Net.Sockets.SocketException) when (clock.Elapsed < timeout)
            {
                Thread.Sleep(50);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new BenchException($"the home agent did not accept connections on {OuterAddress}:{Port} within {timeout.TotalSeconds:0} s ({e.Message}); last lines:\n{_daemon.Tail(40)}");
            }
        }
    }

    private static string Fleet(int j) => "fleet-" + j.ToString(CultureInfo.InvariantCulture);

    private string WriteConfig(string path)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("Listen", $"{OuterAddress}:{Port}");
            w.WriteString("Certificate", _pki.ServerPem);
            w.WriteString("PrivateKey", _pki.ServerKey);
            w.WriteString("ClientCa", _pki.CaPem);
            w.WriteString("HomePrefix", "10.0.0.0/16");
            w.WriteString("OuterAddress", OuterAddress);
            w.WriteString("LanInterface", LanInterface);
            w.WriteNumber("MaximumLifetimeSeconds", LifetimeSeconds);
            w.WriteString("LogLevel", _o.DaemonLogLevel);
            w.WriteStartObject("Authorizations");
            foreach (Laptop l in _laptops)
            {
                w.WriteStartArray(l.Identity);
                w.WriteStringValue(l.Home.ToString());
                w.WriteEndArray();
            }

            foreach (IGrouping<string, Laptop> g in _fleetLaptops.GroupBy(l => l.Identity))
            {
                w.WriteStartArray(g.Key);
                foreach (Laptop l in g)
                {
                    w.WriteStringValue(l.Home.ToString());
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        File.WriteAllText(path, Encoding.UTF8.GetString(stream.ToArray()));
        return path;
    }

    private GrpcChannel Channel(SslStreamCertificateContext tls)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = _o.RpcTimeout,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = SslProtocols.Tls13,
                ClientCertificateContext = tls,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, cert, _, errors) => _pki.ValidateServer(cert, errors),
            },
            ConnectCallback = _sockets.ConnectAsync,
        };
        return GrpcChannel.ForAddress(_address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    private CallOptions Call => new(deadline: DateTime.UtcNow + _o.RpcTimeout);

    private static RegisterRequest Request(Laptop l) => new()
    {
        CareOfAddress = l.CareOf.ToString(),
        HomeAddress = l.ExplicitHome ? l.Home.ToString() : "",
        DeviceId = l.DeviceId,
        RequestedLifetimeSeconds = LifetimeSeconds,
    };

    /// <summary>
    /// Untimed: <paramref name="count"/> laptops of each mode register and deregister (and the kernel
    /// follows), so the daemon's and the clients' code paths are compiled before the clock starts.
    /// </summary>
    public void WarmUp(int count)
    {
        foreach (ClientMode mode in _o.Modes)
        {
            _ = Round(mode, run: 0, count, timed: false);
        }
    }

    /// <summary>One timed run of <paramref name="mode"/>: register all N, wait for the kernel, deregister all, wait for the kernel to be empty.</summary>
    public void Run(ClientMode mode, int run) => Results.AddRange(Round(mode, run, _o.Laptops, timed: true));

    private List<PhaseResult> Round(ClientMode mode, int run, int n, bool timed)
    {
        Laptop[] laptops = mode == ClientMode.PerLaptop ? _laptops : _fleetLaptops;
        var channels = new GrpcChannel?[mode == ClientMode.PerLaptop ? n : _o.SharedChannels];
        var bindings = new string[n];
        var results = new List<PhaseResult>();
        try
        {
            if (mode == ClientMode.Shared)
            {
                // The shared connections are opened (and their TLS handshakes done) before the clock starts.
                for (int j = 0; j < channels.Length; j++)
                {
                    channels[j] = Channel(_fleetTls[j]);
                    _ = new HomeAgentClient(channels[j]).GetBinding(new GetBindingRequest { Identity = Fleet(j) }, Call);
                }
            }

            PhaseResult reg = Phase(mode, run, "register", n, async i =>
            {
                Laptop l = laptops[i];
                if (mode == ClientMode.PerLaptop)
                {
                    channels[i]?.Dispose(); // a retry: a fresh connection, as a laptop would make
                    channels[i] = Channel(_laptopTls[i]);
                }

                GrpcChannel ch = mode == ClientMode.PerLaptop ? channels[i]! : channels[i % channels.Length]!;
                RegisterReply reply = await new HomeAgentClient(ch).RegisterAsync(Request(l), Call);
                if (reply.HomeAddress != l.Home.ToString() || reply.CareOfAddress != l.CareOf.ToString())
                {
                    throw new BenchException($"{l.Identity}: registered {reply.HomeAddress} at {reply.CareOfAddress}, not {l.Home} at {l.CareOf}");
                }

                bindings[i] = reply.BindingId;
            }, expectTunnels: n);
            if (timed)
            {
                results.Add(reg);
                Report(reg);
            }

            PhaseResult dereg = Phase(mode, run, "deregister", n, async i =>
            {
                GrpcChannel ch = mode == ClientMode.PerLaptop ? channels[i]! : channels[i % channels.Length]!;
                _ = await new HomeAgentClient(ch).DeregisterAsync(new DeregisterRequest { BindingId = bindings[i] }, Call);
            }, expectTunnels: 0);
            if (timed)
            {
                results.Add(dereg);
                Report(dereg);
            }
        }
        finally
        {
            foreach (GrpcChannel? c in channels)
            {
                c?.Dispose();
            }
        }

        return results;
    }

    private void Report(PhaseResult r)
    {
        double[] s = [.. r.LatenciesMs.Order()];
        string kernel = r.KernelSeconds is { } k ? string.Create(CultureInfo.InvariantCulture, $"; kernel done after {k:0.000} s") : KernelDatapath ? "; kernel NOT done" : "";
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"registration-bench: run {r.Run} {ModeName(r.Mode)} {r.Phase}: {r.Count:N0} in {r.WallSeconds:0.000} s ({r.Count / r.WallSeconds:N0}/s), p50 {Percentile(s, 50):0.0} ms, p99 {Percentile(s, 99):0.0} ms, {r.Retries} retries{kernel}"));
    }

    /// <summary>
    /// Runs <paramref name="call"/> for laptops 0..n-1 through C concurrent workers (each takes the
    /// next laptop when its call returns), timing each call and the whole phase; then (with the
    /// kernel datapath) waits until the kernel holds <paramref name="expectTunnels"/> tunnels.
    /// </summary>
    private PhaseResult Phase(ClientMode mode, int run, string phase, int n, Func<int, Task> call, int expectTunnels)
    {
        _daemon.ThrowIfExited();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Thread.Sleep(200);
        var latencies = new double[n];
        int next = -1;
        int failures = 0;
        int retries = 0;
        Exception? firstFailure = null;
        long lastReply = 0;
        int kernelAtLastReply = -1;
        int proxiesNow = -1;
        using var stopPolling = new CancellationTokenSource();

        double daemonCpu = _daemon.CpuSeconds();
        double clientCpu = Environment.CpuUsage.TotalTime.TotalSeconds;
        long start = Stopwatch.GetTimestamp();

        // The kernel is watched from the start, on a thread of its own.
        long? kernelDone = null;
        Exception? watchFailed = null;
        Thread? watcher = null;
        if (KernelDatapath)
        {
            watcher = new Thread(() =>
            {
                try
                {
                    kernelDone = _kernel.WaitFor(expectTunnels, _o.PollInterval, _o.KernelTimeout, stopPolling.Token, p => Volatile.Write(ref proxiesNow, p));
                }
                catch (Exception e)
                {
                    // Reported on the main thread: an exception escaping a thread would end the
                    // process without its cleanup (daemon killed, namespaces deleted).
                    watchFailed = e;
                }
            })
            {
                IsBackground = true,
                Name = "kernel watch",
            };
            watcher.Start();
        }

        async Task Worker()
        {
            await Task.Yield();
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                long t = Stopwatch.GetTimestamp();
                for (int attempt = 0; ; attempt++)
                {
                    try
                    {
                        await call(i).ConfigureAwait(false);
                        break;
                    }
                    catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && attempt < _o.Retries)
                    {
                        // The connection failed (under TCG: the server's 10 s TLS handshake timeout when
                        // many handshakes queue for the CPU). A laptop retries after 1, 2, 4 ... s; so do we.
                        Interlocked.Increment(ref retries);
                        await Task.Delay(TimeSpan.FromSeconds(1 << attempt)).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is RpcException or BenchException or HttpRequestException or IOException or InvalidOperationException)
                    {
                        Interlocked.Increment(ref failures);
                        Interlocked.CompareExchange(ref firstFailure, e, null);
                        break;
                    }
                }

                long done = Stopwatch.GetTimestamp();
                latencies[i] = Stopwatch.GetElapsedTime(t, done).TotalMilliseconds;
                long seen;
                while ((seen = Interlocked.Read(ref lastReply)) < done && Interlocked.CompareExchange(ref lastReply, done, seen) != seen)
                {
                }
            }
        }

        Task.WhenAll(Enumerable.Range(0, Math.Min(_o.Concurrency, n)).Select(_ => Task.Run(Worker))).GetAwaiter().GetResult();
        long end = Interlocked.Read(ref lastReply);
        kernelAtLastReply = Volatile.Read(ref proxiesNow);
        double clientCpuUsed = Environment.CpuUsage.TotalTime.TotalSeconds - clientCpu;
        double daemonCpuUsed = _daemon.CpuSeconds() - daemonCpu;
        if (failures > 0)
        {
            stopPolling.Cancel();
            watcher?.Join();
            _daemon.ThrowIfExited();
            throw new BenchException($"{ModeName(mode)} {phase}: {failures} of {n} calls failed ({retries} retries before); first: {firstFailure!.Message}");
        }

        watcher?.Join();
        if (watchFailed is not null)
        {
            throw new BenchException($"watching the kernel failed: {watchFailed.Message}");
        }

        long finished = kernelDone ?? Stopwatch.GetTimestamp();
        double daemonCpuWithKernel = _daemon.CpuSeconds() - daemonCpu;
        if (KernelDatapath && kernelDone is null)
        {
            _log.WriteLine($"registration-bench: WARNING: the kernel did not reach {expectTunnels} tunnels within {_o.KernelTimeout.TotalSeconds:0} s (proxy entries: {Volatile.Read(ref proxiesNow)})");
        }

        List<(long Time, string Line)> watched = _daemon.Watched(start);
        int applies = watched.Count(w => w.Time <= finished && w.Line.Contains("[1400]", StringComparison.Ordinal));
        int errors = watched.Count(w => w.Time <= finished && w.Line.Contains("[1401]", StringComparison.Ordinal));
        if (!KernelDatapath)
        {
            // Nothing to wait for: give the datapath's (failing) passes a moment, so the next phase does not start under them.
            Thread.Sleep(500);
        }

        return new PhaseResult(mode, run, phase, n,
            Stopwatch.GetElapsedTime(start, end).TotalSeconds,
            latencies,
            kernelDone is { } k ? Stopwatch.GetElapsedTime(start, k).TotalSeconds : null,
            kernelAtLastReply,
            daemonCpuUsed,
            kernelDone is null ? null : daemonCpuWithKernel,
            clientCpuUsed,
            applies,
            errors,
            retries);
    }

    public static string ModeName(ClientMode mode) => mode == ClientMode.PerLaptop ? "one connection per laptop" : "shared connections";

    public static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>Stops the daemon with SIGTERM (its datapath then removes what it installed) and checks its exit status.</summary>
    public void Stop()
    {
        int? code = _daemon.Stop(TimeSpan.FromSeconds(_o.StartTimeout.TotalSeconds));
        if (code != 0)
        {
            _log.WriteLine($"registration-bench: warning: the home agent {(code is null ? "did not stop on SIGTERM and was killed" : $"exited with {code}")}");
        }
    }

    public void Dispose()
    {
        _kernel?.Dispose();
        _sockets?.Dispose();
        _daemon?.Dispose();
        _pki.Dispose();
    }
}
