using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

[assembly: SupportedOSPlatform("linux")]

namespace MobilityAgents.Bench;

/// <summary>Command-line options.</summary>
internal sealed record Options(int Routes, int Runs, bool Json)
{
    public const string Usage = """
        usage: route-bench.sh [--routes N] [--runs R] [--json] [--help]

        Installs N host routes (10.1.0.0/32 upwards, dev veth0 table 100 proto 77) in a fresh
        network namespace, replaces them all (adding a gateway), dumps them and deletes them,
        with MobilityAgents (pipelined batch API, and the one-at-a-time API) and with
        `ip -batch` doing the same work, and prints ops/s per phase side by side. Needs root.

          --routes N   routes per phase (default 10000)
          --runs R     timed runs of every phase; the median is reported (default 3)
          --json       print the results as JSON on stdout (the table then goes to stderr)
          --help       this text

        Exit codes: 0 the benchmark ran and every phase was verified (whether or not the
        target was met; see the last line), 1 a failure (a command failed or a table held
        the wrong routes), 2 bad usage or not root.
        """;

    public static Options? Parse(string[] args, out string? error)
    {
        int routes = 10_000, runs = 3;
        bool json = false;
        error = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--routes":
                    if (!TryInt(args, ref i, 1, Workload.MaxRoutes, out routes, out error))
                    {
                        return null;
                    }

                    break;
                case "--runs":
                    if (!TryInt(args, ref i, 1, 1000, out runs, out error))
                    {
                        return null;
                    }

                    break;
                case "--json":
                    json = true;
                    break;
                case "--help" or "-h":
                    return null;
                default:
                    error = $"unknown argument '{args[i]}'";
                    return null;
            }
        }

        return new Options(routes, runs, json);
    }

    private static bool TryInt(string[] args, ref int i, int min, int max, out int value, out string? error)
    {
        string name = args[i];
        value = 0;
        error = null;
        if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            error = $"{name} needs a number from {min} to {max}";
            return false;
        }

        i++;
        return true;
    }
}

internal static class Program
{
    private static BenchNamespace? s_namespace;
    private static volatile bool s_interrupted;

    public static int Main(string[] args)
    {
        Options? o = Options.Parse(args, out string? error);
        if (o is null)
        {
            (error is null ? Console.Out : Console.Error).WriteLine((error is null ? "" : $"route-bench: {error}\n\n") + Options.Usage);
            return error is null ? 0 : 2;
        }

        if (!Environment.IsPrivilegedProcess)
        {
            Console.Error.WriteLine("route-bench: needs root (it creates a network namespace and programs routes in it); run it with sudo");
            return 2;
        }

        // Ctrl-C, kill, hang-up: delete the namespace before going. The handler runs on another
        // thread while the main one may still be waiting for the kernel or for ip; exiting from
        // here ends the process regardless.
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using PosixSignalRegistration sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);
        try
        {
            using BenchNamespace ns = BenchNamespace.Create(n => s_namespace = n);
            TextWriter human = o.Json ? Console.Error : Console.Out;
            Report report = new Bench(o, ns, Console.Error).Run();
            report.WriteTable(human);
            if (o.Json)
            {
                report.WriteJson(Console.OpenStandardOutput());
            }

            return 0;
        }
        catch (Exception e)
        {
            // Caught whatever it is: an unhandled exception would end the process without running
            // the finally below, and leave the namespace behind.
            if (!s_interrupted)
            {
                Console.Error.WriteLine(e is BenchException or NetlinkException or NetlinkSocketException
                    ? $"route-bench: FAILED: {e.Message}"
                    : $"route-bench: FAILED: {e}");
            }

            return 1;
        }
        finally
        {
            s_namespace?.Dispose();
        }
    }

    private static void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        s_interrupted = true;
        Console.Error.WriteLine($"route-bench: {context.Signal}: removing namespace {s_namespace?.Name} and stopping");
        s_namespace?.Dispose();
        Environment.Exit(context.Signal switch { PosixSignal.SIGINT => 130, PosixSignal.SIGHUP => 129, _ => 143 });
    }
}

/// <summary>One timing: wall-clock seconds, and CPU seconds (user + system) of the process that did the work.</summary>
internal readonly record struct Sample(double Wall, double Cpu);

/// <summary>The measurement: warm-up, then R runs of every implementation's four phases, each verified.</summary>
internal sealed class Bench(Options options, BenchNamespace ns, TextWriter log)
{
    public const string MaBatch = "MobilityAgents batch";
    public const string MaSingle = "MobilityAgents single";
    public const string IpBatch = "ip -batch";
    public const string IpJson = "ip -j";
    public static readonly string[] Phases = ["add", "replace", "dump", "delete"];

    private readonly Dictionary<(string Impl, string Phase), List<Sample>> _samples = [];
    private readonly List<Sample> _startup = [];

    public Report Run()
    {
        using NetworkNamespace netns = NetworkNamespace.OpenByName(ns.Name);
        using RouteNetlink h = RouteNetlink.Open(netns);
        int ifindex = h.Links.IndexOf(BenchNamespace.Device);
        string table = Workload.Table.ToString(CultureInfo.InvariantCulture);

        // Warm-up (untimed): the JIT, ip's pages, the kernel's caches. A few verified rounds of
        // everything, then many quick rounds of the library alone: tiered compilation promotes a
        // method to optimised code only after 30 calls (and ~100 ms without new methods), and the
        // batch entry points are called once per phase, so a single small round would leave them
        // unoptimised (with on-stack replacement kicking in) during the first timed runs. The
        // pauses let the background compiler finish.
        var warm = new Workload(Math.Min(200, options.Routes), ifindex, ns.WorkDirectory, "warmup");
        log.WriteLine($"route-bench: namespace {ns.Name}, warm-up with {warm.Count} routes");
        for (int i = 0; i < 3; i++)
        {
            RoundMa(h, warm, single: false, timed: false);
            RoundMa(h, warm, single: true, timed: false);
            RoundIp(warm, table, timed: false);
        }

        for (int i = 0; i < 40; i++)
        {
            RoundMa(h, warm, single: false, timed: false, verify: false);
            RoundMa(h, warm, single: true, timed: false, verify: false);
            if (i % 10 == 9)
            {
                Thread.Sleep(250);
            }
        }

        Thread.Sleep(500);
        var work = new Workload(options.Routes, ifindex, ns.WorkDirectory, "bench");
        string empty = Path.Combine(ns.WorkDirectory, "empty.batch");
        File.WriteAllText(empty, "");
        for (int run = 0; run < options.Runs; run++)
        {
            // Rotate the order, so no implementation always goes first (or last) in a run.
            for (int k = 0; k < 3; k++)
            {
                switch ((run + k) % 3)
                {
                    case 0:
                        RoundMa(h, work, single: false, timed: true);
                        break;
                    case 1:
                        RoundMa(h, work, single: true, timed: true);
                        break;
                    default:
                        RoundIp(work, table, timed: true);
                        break;
                }
            }

            // ip's start-up: process, netns switch, netlink socket, on an empty batch.
            for (int i = 0; i < 5; i++)
            {
                _startup.Add(TimeIp(() => ns.Ip.Run("-n", ns.Name, "-batch", empty)));
            }

            log.WriteLine($"route-bench: run {run + 1}/{options.Runs} done, every phase verified");
        }

        return new Report(options, _samples, new Sample(Median(_startup, s => s.Wall), Median(_startup, s => s.Cpu)), KernelVersion(), IprouteVersion(ns.Ip));
    }

    private void RoundMa(RouteNetlink h, Workload w, bool single, bool timed, bool verify = true)
    {
        string impl = single ? MaSingle : MaBatch;
        Record(timed, impl, "add", Time(() =>
        {
            RouteEntry[] routes = w.Routes(withGateway: false);
            if (single)
            {
                foreach (RouteEntry r in routes)
                {
                    h.Routes.Add(r);
                }
            }
            else
            {
                ThrowIfAny(h.Routes.AddMany(routes), "AddMany");
            }
        }));
        if (verify)
        {
            w.Verify(ns.Ip, ns.Name, $"{impl} add", w.Count, withGateway: false);
        }

        Record(timed, impl, "replace", Time(() =>
        {
            RouteEntry[] routes = w.Routes(withGateway: true);
            if (single)
            {
                foreach (RouteEntry r in routes)
                {
                    h.Routes.Replace(r);
                }
            }
            else
            {
                ThrowIfAny(h.Routes.ReplaceMany(routes), "ReplaceMany");
            }
        }));
        if (verify)
        {
            w.Verify(ns.Ip, ns.Name, $"{impl} replace", w.Count, withGateway: true);
        }

        if (!single)
        {
            // A dump is one request either way: it is measured once, in the batch column.
            List<RouteEntry> dumped = [];
            Record(timed, impl, "dump", Time(() => dumped = h.Routes.List(Workload.Table)));
            w.VerifyDump(dumped);
        }

        Record(timed, impl, "delete", Time(() =>
        {
            RouteEntry[] routes = w.Routes(withGateway: false);
            if (single)
            {
                foreach (RouteEntry r in routes)
                {
                    if (!h.Routes.Delete(r))
                    {
                        throw new BenchException($"Routes.Delete: route {r.ToIpArguments()} was not there");
                    }
                }
            }
            else
            {
                ThrowIfAny(h.Routes.DeleteMany(routes), "DeleteMany");
            }
        }));
        if (verify)
        {
            w.Verify(ns.Ip, ns.Name, $"{impl} delete", 0, withGateway: false);
        }
    }

    private void RoundIp(Workload w, string table, bool timed)
    {
        Record(timed, IpBatch, "add", TimeIp(() => ns.Ip.Run("-n", ns.Name, "-batch", w.AddFile)));
        w.Verify(ns.Ip, ns.Name, "ip -batch add", w.Count, withGateway: false);
        Record(timed, IpBatch, "replace", TimeIp(() => ns.Ip.Run("-n", ns.Name, "-batch", w.ReplaceFile)));
        w.Verify(ns.Ip, ns.Name, "ip -batch replace", w.Count, withGateway: true);
        Record(timed, IpBatch, "dump", TimeIp(() => ns.Ip.Run("-n", ns.Name, "route", "show", "table", table)));
        Record(timed, IpJson, "dump", TimeIp(() => ns.Ip.Run("-n", ns.Name, "-j", "route", "show", "table", table)));
        w.Verify(ns.Ip, ns.Name, "ip route show", w.Count, withGateway: true);
        Record(timed, IpBatch, "delete", TimeIp(() => ns.Ip.Run("-n", ns.Name, "-batch", w.DeleteFile)));
        w.Verify(ns.Ip, ns.Name, "ip -batch delete", 0, withGateway: false);
    }

    private void Record(bool timed, string impl, string phase, Sample sample)
    {
        if (!timed)
        {
            return;
        }

        if (!_samples.TryGetValue((impl, phase), out List<Sample>? list))
        {
            _samples[(impl, phase)] = list = [];
        }

        list.Add(sample);
    }

    /// <summary>
    /// Times work done in this process: wall clock, and this process's CPU time (every thread, user
    /// and system). The garbage of earlier phases (and of the verification) is collected first, so
    /// that a phase pays only for its own.
    /// </summary>
    private static Sample Time(Action work)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        double cpu = Spawn.ProcessCpuSeconds();
        long start = Stopwatch.GetTimestamp();
        work();
        double wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new Sample(wall, Spawn.ProcessCpuSeconds() - cpu);
    }

    /// <summary>Times one ip process from before its spawn to after its exit; the CPU time is the child's (wait4).</summary>
    private static Sample TimeIp(Func<Spawn.Result> run)
    {
        long start = Stopwatch.GetTimestamp();
        Spawn.Result r = run();
        return new Sample(Stopwatch.GetElapsedTime(start).TotalSeconds, r.CpuSeconds);
    }

    private static void ThrowIfAny(NetlinkException?[] results, string what)
    {
        int failed = results.Count(e => e is not null);
        if (failed > 0)
        {
            throw new BenchException($"Routes.{what}: {failed} of {results.Length} requests failed; first: {results.First(e => e is not null)!.Message}");
        }
    }

    internal static double Median(List<Sample> samples, Func<Sample, double> value)
    {
        double[] s = [.. samples.Select(value).Order()];
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }

    private static string KernelVersion()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return RuntimeInformation.OSDescription;
        }
    }

    private static string IprouteVersion(Ip ip) => ip.Capture("-V").Trim();
}
