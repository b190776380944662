using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;

[assembly: SupportedOSPlatform("linux")]

namespace MobilityAgents.Bench.Registration;

/// <summary>Command-line options.</summary>
internal sealed record Options
{
    public const string Usage = """
        usage: registration-bench.sh [--vm] [--laptops N] [--concurrency C] [--runs R] [options]

        Starts the real home agent daemon (with its kernel datapath) in a fresh network namespace
        with N authorized identities, each with its own client certificate, and has C concurrent
        gRPC clients register them (distinct care-of addresses), then deregister them. Prints
        registrations/s, p50/p99 latency, and the time until the kernel holds all N tunnels
        ("control plane" and "control plane + kernel" separately). Where this kernel cannot make
        ipip links (this host) the figures are control plane only, and labelled so. Then, where
        ipip exists (the kernel VM), the handover gap with the real mobile agent. Needs root.

          --laptops N          identities/laptops (default 1000, at most 30000)
          --concurrency C      concurrent clients (default 50)
          --runs R             timed runs of each client mode; the median is reported (default 3)
          --modes LIST         per-laptop,shared (default both): one connection per laptop (its own
                               TCP + TLS handshake, what real laptops do), or a few shared
                               connections opened before the clock starts (the RPC alone)
          --shared-channels K  connections (identities) of the shared mode (default 4)
          --warmup W           laptops registered and deregistered untimed first (default min(N, 100))
          --poll-ms MS         kernel polling interval (default 50)
          --kernel-timeout S   longest wait for the kernel to catch up, per phase (default 600)
          --start-timeout S    longest wait for a daemon to start (default 300)
          --rpc-timeout S      deadline of each call (default 300)
          --retries K          a call whose connection fails (UNAVAILABLE) is retried up to K
                               times on a fresh connection after 1, 2, 4 ... s, as a laptop
                               would (default 3); the retries are counted and reported
          --daemon-log-level L the home agent's LogLevel (default Information, as deployed)
          --handover-runs H    handovers measured (default 5; 0: none). Needs ipip: skipped,
                               with a message, where the kernel cannot make ipip links
          --handover-warmup W  untimed moves before those (default 2: one each way; shown, not
                               in the summary)
          --ping-interval MS   the LAN host's ping interval during handovers (default 10)
          --part P             registration, handover or all (default all)
          --help               this text

        Exit codes: 0 the benchmark ran (the figures are printed whatever they are), 1 a failure
        (a refused or failed call, a daemon that died, a handover that never completed), 2 bad
        usage or not root.
        """;

    public int Laptops { get; init; } = 1000;

    public int Concurrency { get; init; } = 50;

    public int Runs { get; init; } = 3;

    public ClientMode[] Modes { get; init; } = [ClientMode.PerLaptop, ClientMode.Shared];

    public int SharedChannels { get; init; } = 4;

    public int? WarmUp { get; init; }

    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeSpan KernelTimeout { get; init; } = TimeSpan.FromSeconds(600);

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(300);

    public TimeSpan RpcTimeout { get; init; } = TimeSpan.FromSeconds(300);

    public string DaemonLogLevel { get; init; } = "Information";

    public int Retries { get; init; } = 3;

    public int HandoverRuns { get; init; } = 5;

    public int HandoverWarmUp { get; init; } = 2;

    public int PingIntervalMs { get; init; } = 10;

    public bool Registration { get; init; } = true;

    public bool Handover { get; init; } = true;

    public static Options? Parse(string[] args, out string? error)
    {
        var o = new Options();
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "--help" or "-h")
            {
                return null;
            }

            if (i + 1 >= args.Length)
            {
                error = $"unknown argument '{a}', or it needs a value";
                return null;
            }

            string v = args[++i];
            int Int(int min, int max)
            {
                if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int x) || x < min || x > max)
                {
                    throw new FormatException($"{a} needs a number from {min} to {max}");
                }

                return x;
            }

            try
            {
                o = a switch
                {
                    "--laptops" => o with { Laptops = Int(1, 30_000) },
                    "--concurrency" => o with { Concurrency = Int(1, 5000) },
                    "--runs" => o with { Runs = Int(1, 50) },
                    "--modes" => o with { Modes = ParseModes(v) },
                    "--shared-channels" => o with { SharedChannels = Int(1, 64) },
                    "--warmup" => o with { WarmUp = Int(0, 30_000) },
                    "--poll-ms" => o with { PollInterval = TimeSpan.FromMilliseconds(Int(1, 10_000)) },
                    "--kernel-timeout" => o with { KernelTimeout = TimeSpan.FromSeconds(Int(1, 86_400)) },
                    "--start-timeout" => o with { StartTimeout = TimeSpan.FromSeconds(Int(1, 86_400)) },
                    "--rpc-timeout" => o with { RpcTimeout = TimeSpan.FromSeconds(Int(1, 86_400)) },
                    "--daemon-log-level" => o with { DaemonLogLevel = v is "Trace" or "Debug" or "Information" or "Warning" or "Error" or "Critical" ? v : throw new FormatException("--daemon-log-level: Trace, Debug, Information, Warning, Error or Critical") },
                    "--retries" => o with { Retries = Int(0, 10) },
                    "--handover-runs" => o with { HandoverRuns = Int(0, 100) },
                    "--handover-warmup" => o with { HandoverWarmUp = Int(0, 10) },
                    "--ping-interval" => o with { PingIntervalMs = Int(2, 1000) },
                    "--part" => v switch
                    {
                        "registration" => o with { Registration = true, Handover = false },
                        "handover" => o with { Registration = false, Handover = true },
                        "all" => o with { Registration = true, Handover = true },
                        _ => throw new FormatException("--part: registration, handover or all"),
                    },
                    _ => throw new FormatException($"unknown argument '{a}'"),
                };
            }
            catch (FormatException e)
            {
                error = e.Message;
                return null;
            }
        }

        return o;
    }

    private static ClientMode[] ParseModes(string v) =>
        [.. v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => m switch
        {
            "per-laptop" => ClientMode.PerLaptop,
            "shared" => ClientMode.Shared,
            _ => throw new FormatException($"--modes: '{m}' is neither per-laptop nor shared"),
        }).Distinct()];
}

/// <summary>The benchmark's scratch directory (certificates, configurations), deleted on exit or on a signal.</summary>
internal sealed class TempDirectory(string path) : IDisposable
{
    public void Dispose()
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"warning: could not remove {path}: {e.Message}");
        }
    }
}

internal static class Program
{
    private static readonly Lock s_cleanupLock = new();
    private static readonly List<IDisposable> s_cleanup = [];
    private static volatile bool s_interrupted;

    public static int Main(string[] args)
    {
        Options? o = Options.Parse(args, out string? error);
        if (o is null)
        {
            (error is null ? Console.Out : Console.Error).WriteLine((error is null ? "" : $"registration-bench: {error}\n\n") + Options.Usage);
            return error is null ? 0 : 2;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            Console.Error.WriteLine("registration-bench: needs root (it creates network namespaces and runs the daemons in them); run it with sudo");
            return 2;
        }

        // Ctrl-C, kill, hang-up: kill the daemons (by pid) and delete the namespaces before going.
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using PosixSignalRegistration sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);
        TextWriter log = Console.Error;
        string work = Directory.CreateTempSubdirectory("ma-bench-reg-").FullName;
        Register(new TempDirectory(work));
        try
        {
            var namespaces = new Namespaces();
            Register(namespaces);
            string environment = Env.Describe();
            log.WriteLine($"registration-bench: {environment}");

            // Can this kernel make ipip links? (This host: no. The kernel VM: yes.)
            string probe = namespaces.Create("probe");
            bool ipip = Namespaces.CanMakeIpip(probe, out string why);
            log.WriteLine(ipip ? "registration-bench: this kernel makes ipip links: the kernel datapath is measured"
                               : $"registration-bench: this kernel cannot make ipip links ({why}): CONTROL PLANE ONLY");

            var report = new Report(o, environment, ipip);
            if (o.Registration)
            {
                RunRegistrations(o, namespaces, work, ipip, log, report);
            }

            if (o.Handover)
            {
                if (!ipip)
                {
                    report.HandoverSkipped = $"skipped: this kernel cannot make ipip links ({why}); run it in the kernel VM (bench/registration-bench.sh --vm)";
                }
                else if (o.HandoverRuns == 0)
                {
                    report.HandoverSkipped = "skipped (--handover-runs 0)";
                }
                else
                {
                    using var handover = new Handover(o, namespaces, Path.Combine(work, "handover"), log, Register);
                    // Two untimed moves first (one each way): the first move in each direction
                    // compiles the daemons' code for it, which under TCG takes seconds.
                    for (int r = 1; r <= o.HandoverWarmUp; r++)
                    {
                        report.Handovers.Add(handover.Move(r, warmUp: true));
                    }

                    for (int r = 1; r <= o.HandoverRuns; r++)
                    {
                        report.Handovers.Add(handover.Move(r, warmUp: false));
                    }

                    handover.Stop();
                    report.HandoverSetup = handover.Describe();
                }
            }

            report.Write(Console.Out);
            return 0;
        }
        catch (Exception e)
        {
            // Caught whatever it is: an unhandled exception would end the process without running
            // the finally below, and leave the namespaces and daemons behind.
            if (!s_interrupted)
            {
                Console.Error.WriteLine(e is BenchException or NetlinkException or NetlinkSocketException
                    ? $"registration-bench: FAILED: {e.Message}"
                    : $"registration-bench: FAILED: {e}");
            }

            return 1;
        }
        finally
        {
            Cleanup();
        }
    }

    private static void RunRegistrations(Options o, Namespaces namespaces, string work, bool ipip, TextWriter log, Report report)
    {
        using var bench = new Registrations(o, namespaces, work, ipip, log, Register);
        report.CertificateSeconds = bench.CertificateSeconds;
        report.DaemonStartSeconds = bench.DaemonStartSeconds;
        int warm = o.WarmUp ?? Math.Min(o.Laptops, 100);
        if (warm > 0)
        {
            log.WriteLine($"registration-bench: warm-up (untimed): {warm} laptops register and deregister in each mode");
            bench.WarmUp(warm);
        }

        for (int run = 1; run <= o.Runs; run++)
        {
            // Rotate the order of the modes, so none always goes first.
            for (int k = 0; k < o.Modes.Length; k++)
            {
                bench.Run(o.Modes[(run - 1 + k) % o.Modes.Length], run);
            }
        }

        bench.Stop();
        report.Phases.AddRange(bench.Results);
    }

    /// <summary>Things to dispose on exit or on a signal: daemons (killed by pid) before the namespaces they run in.</summary>
    private static void Register(IDisposable d)
    {
        lock (s_cleanupLock)
        {
            s_cleanup.Add(d);
        }
    }

    private static void Cleanup()
    {
        IDisposable[] all;
        lock (s_cleanupLock)
        {
            all = [.. s_cleanup];
            s_cleanup.Clear();
        }

        // Last registered first: the daemons were registered after the namespaces they run in.
        foreach (IDisposable d in all.Reverse())
        {
            try
            {
                d.Dispose();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or BenchException or System.ComponentModel.Win32Exception)
            {
                Console.Error.WriteLine($"warning: cleanup: {e.Message}");
            }
        }
    }

    private static void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        s_interrupted = true;
        Console.Error.WriteLine($"registration-bench: {context.Signal}: killing the daemons, removing the namespaces, stopping");
        Cleanup();
        Environment.Exit(context.Signal switch { PosixSignal.SIGINT => 130, PosixSignal.SIGHUP => 129, _ => 143 });
    }
}
