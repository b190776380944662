using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Bench.Registration;

/// <summary>A failure that ends the benchmark (exit 1): a command that failed, a refused registration, a daemon that died.</summary>
internal sealed class BenchException(string message) : Exception(message);

/// <summary>
/// The benchmark's network namespaces: <c>ma-bench-XXXXXX-ROLE</c>, made with <c>ip netns add</c>
/// and deleted on <see cref="Dispose"/> (idempotent, safe from a signal handler). Every command is
/// <c>ip -n NS ...</c> or <c>ip netns exec NS ...</c>, and links are created inside the
/// namespaces, so the root namespace is never touched. Before a namespace is deleted, any process
/// still inside it is killed by pid: only this benchmark's processes (its daemons, ping) live there.
/// </summary>
internal sealed class Namespaces : IDisposable
{
    private readonly List<string> _created = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    public Namespaces() => Tag = "ma-bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));

    /// <summary>"ma-bench-XXXXXX": every namespace is TAG-ROLE.</summary>
    public string Tag { get; }

    public string Name(string role) => Tag + "-" + role;

    /// <summary>Creates TAG-ROLE with loopback up, and returns its name.</summary>
    public string Create(string role)
    {
        string name = Name(role);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (File.Exists("/run/netns/" + name))
            {
                throw new BenchException($"network namespace {name} exists already: not ours, left alone");
            }

            _created.Add(name); // before the add: a signal arriving right after it must still delete it
        }

        Tool.Run("ip", "netns", "add", name);
        Tool.Run("ip", "-n", name, "link", "set", "lo", "up");
        return name;
    }

    public void Dispose()
    {
        string[] names;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            names = [.. _created];
        }

        foreach (string name in names)
        {
            if (!File.Exists("/run/netns/" + name))
            {
                continue;
            }

            foreach (string pid in Tool.TryRun("ip", "netns", "pids", name).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                _ = Tool.TryRun("kill", "-9", pid);
            }

            (int rc, _, string err) = Tool.TryRun("ip", "netns", "del", name);
            if (rc != 0)
            {
                Console.Error.WriteLine($"warning: `ip netns del {name}` exited with {rc}: {err.Trim()}");
            }
        }
    }

    /// <summary>
    /// True if this kernel can make a classic ipip link (tries one in <paramref name="ns"/> and
    /// deletes it). This host has no ipip module; the kernel VM has.
    /// </summary>
    public static bool CanMakeIpip(string ns, out string why)
    {
        (int rc, _, string err) = Tool.TryRun("ip", "-n", ns, "link", "add", "probe0", "type", "ipip", "local", "192.0.2.250", "remote", "192.0.2.251");
        why = err.Trim();
        if (rc == 0)
        {
            Tool.Run("ip", "-n", ns, "link", "del", "probe0");
        }

        return rc == 0;
    }
}

/// <summary>Runs ip, kill and friends. Few calls (each costs 0.3-0.6 s under TCG), so a plain Process is enough.</summary>
internal static class Tool
{
    public static string Run(string file, params string[] args) => RunWithInput(file, null, args);

    /// <summary>Runs <c>ip -n NS -batch -</c> with <paramref name="lines"/> on its stdin: one process for many changes.</summary>
    public static void Batch(string ns, params string[] lines) => RunWithInput("ip", string.Join('\n', lines) + "\n", "-n", ns, "-batch", "-");

    public static string RunWithInput(string file, string? input, params string[] args)
    {
        (int rc, string stdout, string stderr) = Exec(file, input, args);
        return rc == 0 ? stdout : throw new BenchException($"`{file} {string.Join(' ', args)}` exited with {rc}: {stderr.Trim()}");
    }

    public static (int Rc, string Stdout, string Stderr) TryRun(string file, params string[] args)
    {
        try
        {
            return Exec(file, null, args);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (127, "", e.Message);
        }
    }

    private static (int Rc, string Stdout, string Stderr) Exec(string file, string? input, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new BenchException($"cannot start {file}");
        if (input is not null)
        {
            p.StandardInput.Write(input);
            p.StandardInput.Close();
        }

        Task<string> stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }
}

/// <summary>
/// Makes TCP sockets inside a network namespace for the gRPC clients' ConnectCallback. A socket
/// belongs to the namespace of the thread that created it, so one dedicated thread enters the
/// namespace once (setns) and creates every socket: unlike <see cref="NetworkNamespace.Run{T}"/>
/// (a new thread per call), this costs nothing per connection beyond the socket itself, so the
/// clients' latency is not inflated by the harness.
/// </summary>
internal sealed partial class NamespaceSockets : IDisposable
{
    private const int CLONE_NEWNET = 0x40000000;
    private readonly Channel<TaskCompletionSource<Socket>> _requests = Channel.CreateUnbounded<TaskCompletionSource<Socket>>(new() { SingleReader = true });
    private readonly Thread _thread;

    public NamespaceSockets(string ns)
    {
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _thread = new Thread(() => Serve(ns, ready)) { IsBackground = true, Name = "sockets in " + ns };
        _thread.Start();
        ready.Task.GetAwaiter().GetResult();
    }

    public Task<Socket> CreateAsync()
    {
        var tcs = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        return _requests.Writer.TryWrite(tcs) ? tcs.Task : Task.FromException<Socket>(new ObjectDisposedException(nameof(NamespaceSockets)));
    }

    /// <summary>A ConnectCallback for SocketsHttpHandler: the connection's socket is made inside the namespace.</summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        Socket s = await CreateAsync().ConfigureAwait(false);
        try
        {
            s.NoDelay = true;
            await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(s, ownsSocket: true);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private void Serve(string ns, TaskCompletionSource ready)
    {
        int fd = Open("/run/netns/" + ns, 0x80000 /* O_RDONLY | O_CLOEXEC */);
        if (fd < 0 || SetNs(fd, CLONE_NEWNET) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            ready.SetException(new BenchException($"setns into {ns}: errno {errno}"));
            return;
        }

        _ = Close(fd);
        ready.SetResult();
        while (_requests.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (_requests.Reader.TryRead(out TaskCompletionSource<Socket>? tcs))
            {
                try
                {
                    tcs.SetResult(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                }
                catch (SocketException e)
                {
                    tcs.SetException(e);
                }
            }
        }
    }

    public void Dispose() => _requests.Writer.TryComplete();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

/// <summary>
/// Counts what the home agent's kernel datapath has put in place in its namespace, through our own
/// netlink handle (independent of the daemon's logs): tunnel links of ours (name "ma...", alias
/// "mobilityagents:...", up), protocol-77 /32 routes in main, protocol-77 proxy entries on the LAN
/// interface. The proxy entry is the last object the reconciler makes for a binding, so the proxy
/// count is polled and the links and routes are counted only when it is complete.
/// </summary>
internal sealed class KernelWatch : IDisposable
{
    private readonly NetworkNamespace _netns;
    private readonly RouteNetlink _h;
    private readonly int _lan;

    public KernelWatch(string ns, string lanInterface)
    {
        _netns = NetworkNamespace.OpenByName(ns);
        _h = RouteNetlink.Open(_netns);
        _lan = _h.Links.IndexOf(lanInterface);
    }

    public int Proxies() => Dump(() => _h.Neighbours.List(proxy: true).Count(n => n.InterfaceIndex == _lan && n.Protocol == Ownership.NeighbourProtocol));

    public int Links() => Dump(() => _h.Links.List().Count(l =>
        l.Name.StartsWith(Ownership.LinkNamePrefix, StringComparison.Ordinal) && l.Alias is { } a &&
        a.StartsWith(Ownership.LinkAliasPrefix, StringComparison.Ordinal) && l.Kind == "ipip" && l.IsUp));

    public int Routes() => Dump(() => _h.Routes.List().Count(r => r.Protocol == Ownership.RouteProtocol && r.DestinationPrefixLength == 32));

    /// <summary>A dump the daemon's concurrent changes interrupted (NLM_F_DUMP_INTR) is simply made again.</summary>
    private static int Dump(Func<int> count)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return count();
            }
            catch (NetlinkDumpInterruptedException) when (attempt < 1000)
            {
                Thread.Sleep(1);
            }
        }
    }

    /// <summary>True if exactly <paramref name="n"/> of each are in place.</summary>
    public bool Has(int n, out int proxies)
    {
        proxies = Proxies();
        return proxies == n && Links() == n && Routes() == n;
    }

    /// <summary>
    /// Polls (every <paramref name="interval"/>) until <see cref="Has"/> holds for <paramref name="n"/>
    /// or <paramref name="timeout"/> passes; returns the Stopwatch timestamp when it held, or null.
    /// <paramref name="progress"/> gets the proxy count after each poll.
    /// </summary>
    public long? WaitFor(int n, TimeSpan interval, TimeSpan timeout, CancellationToken cancel, Action<int>? progress = null)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            bool done = Has(n, out int proxies);
            long now = Stopwatch.GetTimestamp();
            progress?.Invoke(proxies);
            if (done)
            {
                return now;
            }

            if (Stopwatch.GetElapsedTime(start, now) > timeout || cancel.IsCancellationRequested)
            {
                return null;
            }

            Thread.Sleep(interval);
        }
    }

    public void Dispose()
    {
        _h.Dispose();
        _netns.Dispose();
    }
}

/// <summary>Small helpers: addresses, the environment line, /proc.</summary>
internal static class Env
{
    /// <summary>The <paramref name="index"/>-th host address from a.b.first.1 upwards, 254 per /24 (no .0, no .255).</summary>
    public static IPAddress Address(byte a, byte b, int first, int index) =>
        new([a, b, checked((byte)(first + (index / 254))), (byte)(1 + (index % 254))]);

    public static string KernelVersion() => Read("/proc/sys/kernel/osrelease") ?? RuntimeInformation.OSDescription;

    public static string LoadAverage() => string.Join(' ', (Read("/proc/loadavg") ?? "? ? ?").Split(' ').Take(3));

    /// <summary>Where this runs: the kernel VM (QEMU/TCG) or a host, and its kernel, CPUs, load.</summary>
    public static string Describe()
    {
        string? vendor = Read("/sys/class/dmi/id/sys_vendor");
        string where = Environment.GetEnvironmentVariable("MA_BENCH_ENVIRONMENT") is { Length: > 0 } e ? e
            : vendor is "QEMU" ? "QEMU guest (accelerator unknown; under TCG .NET runs about 30x slower than native)"
            : "host";
        return string.Create(CultureInfo.InvariantCulture,
            $"{where}; kernel {KernelVersion()}; {Environment.ProcessorCount} CPU(s); load average {LoadAverage()}; .NET {Environment.Version}");
    }

    /// <summary>utime + stime of a process, in seconds (from /proc/PID/stat; 10 ms resolution).</summary>
    public static double ProcessCpuSeconds(int pid)
    {
        string? stat = Read($"/proc/{pid}/stat");
        if (stat is null)
        {
            return 0;
        }

        // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
