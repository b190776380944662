using System.Globalization;

namespace MobilityAgents.Bench.Registration;

/// <summary>One handover: the laptop's address change to the first ping reply through the new path.</summary>
/// <param name="Run">1-based.</param>
/// <param name="GapSeconds">From just before the address change to the first reply after it.</param>
/// <param name="OutageSeconds">From the last reply before the change to the first after it.</param>
/// <param name="RegisteredSeconds">From the change to the home agent's log line of the move (event 1100, Moved).</param>
/// <param name="Lost">Echo requests sent during the outage that got no reply.</param>
/// <param name="Direction">"old care-of -> new care-of".</param>
/// <param name="NoticedSeconds">From the change to the mobile agent's log line of the new care-of address (event 2300).</param>
/// <param name="ReRegisteredSeconds">From the change to the mobile agent's log line of the registration from it (event 2100).</param>
/// <param name="WarmUp">An untimed first move (each direction once): the daemons' move code paths are compiled in it; not in the summary.</param>
internal sealed record HandoverResult(int Run, double GapSeconds, double OutageSeconds, double? RegisteredSeconds, int Lost, string Direction, double? NoticedSeconds, double? ReRegisteredSeconds, bool WarmUp);

/// <summary>The figures, as tables.</summary>
internal sealed class Report(Options options, string environment, bool kernelDatapath)
{
    public List<PhaseResult> Phases { get; } = [];

    public List<HandoverResult> Handovers { get; } = [];

    public string? HandoverSkipped { get; set; }

    public string? HandoverSetup { get; set; }

    public double CertificateSeconds { get; set; }

    public double DaemonStartSeconds { get; set; }

    private static string Tcg(string environment) =>
        environment.Contains("TCG", StringComparison.Ordinal) || environment.Contains("QEMU", StringComparison.Ordinal)
            ? " [kernel VM, QEMU/TCG software emulation: about 30x slower than native]"
            : "";

    public void Write(TextWriter w)
    {
        string tcg = Tcg(environment);
        w.WriteLine();
        w.WriteLine("registration-bench");
        w.WriteLine($"environment: {environment}");
        if (options.Registration && Phases.Count > 0)
        {
            WriteRegistrations(w, tcg);
        }

        if (options.Handover)
        {
            WriteHandovers(w, tcg);
        }
    }

    private void WriteRegistrations(TextWriter w, string tcg)
    {
        int n = options.Laptops;
        w.WriteLine(kernelDatapath
            ? "datapath: kernel-classic, measured (this kernel makes ipip links: one tunnel, /32 route and proxy-ARP entry per binding)"
            : "datapath: CONTROL PLANE ONLY. This kernel cannot make ipip links: the daemon's datapath tries for every binding and fails " +
              "(event 1401, counted below), so no 'control plane + kernel' figure exists here; the failing attempts are part of the daemon's CPU.");
        w.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"N = {n:N0} laptops (identities, one ECDSA P-256 client certificate each), concurrency {options.Concurrency}, median of {options.Runs} run(s) per mode; " +
            $"shared mode: {options.SharedChannels} connection(s) opened before the clock starts"));
        w.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"setup: {n + options.SharedChannels + 2:N0} certificates made in {CertificateSeconds:0.00} s; home agent start to listening {DaemonStartSeconds:0.0} s"));

        w.WriteLine();
        w.WriteLine($"control plane: registrations, wall clock from the first call to the last reply (CPU over the same interval; the clients share the machine's CPUs with the daemon){tcg}");
        Table(w,
            ["mode", "N", "concurrency", "registrations/s", "wall s", "p50 ms", "p99 ms", "max ms", "retried (connection failed)", "daemon CPU ms/reg", "client CPU ms/reg"],
            Modes().Select(m => Row(m, "register", r =>
            [
                Registrations.ModeName(m) + (m == ClientMode.PerLaptop ? " (TCP + TLS 1.3 handshake each)" : ""),
                n.ToString("N0", CultureInfo.InvariantCulture),
                options.Concurrency.ToString(CultureInfo.InvariantCulture),
                F0(Median(r, x => x.Count / x.WallSeconds)),
                F3(Median(r, x => x.WallSeconds)),
                F1(Median(r, x => P(x, 50))),
                F1(Median(r, x => P(x, 99))),
                F1(Median(r, x => P(x, 100))),
                F0(Median(r, x => x.Retries)),
                F2(Median(r, x => x.DaemonCpuSeconds * 1000 / x.Count)),
                F2(Median(r, x => x.ClientCpuSeconds * 1000 / x.Count)),
            ])));

        w.WriteLine();
        if (kernelDatapath)
        {
            w.WriteLine($"control plane + kernel: from the first call until the kernel holds all N tunnels (up), /32 routes and proxy entries (polled every {options.PollInterval.TotalMilliseconds:0} ms){tcg}");
            Table(w,
                ["mode", "N", "concurrency", "registrations/s incl. kernel", "wall s", "kernel behind the last reply s", "proxy entries at the last reply", "datapath passes (event 1400)", "daemon CPU ms/reg"],
                Modes().Select(m => Row(m, "register", r =>
                [
                    Registrations.ModeName(m),
                    n.ToString("N0", CultureInfo.InvariantCulture),
                    options.Concurrency.ToString(CultureInfo.InvariantCulture),
                    F0(Median(r, x => x.KernelSeconds is { } k ? x.Count / k : double.NaN)),
                    F3(Median(r, x => x.KernelSeconds ?? double.NaN)),
                    F3(Median(r, x => x.KernelSeconds is { } k ? k - x.WallSeconds : double.NaN)),
                    F0(Median(r, x => x.KernelCountAtLastReply)),
                    F0(Median(r, x => x.Applies)),
                    F2(Median(r, x => x.DaemonCpuSecondsWithKernel is { } c ? c * 1000 / x.Count : double.NaN)),
                ])));
        }
        else
        {
            w.WriteLine("control plane + kernel: not measurable on this kernel (no ipip). Kernel errors the datapath logged (event 1401) per registration phase, median: " +
                        F0(Median(Phases.Where(x => x.Phase == "register").ToList(), x => x.KernelErrors)) +
                        "; datapath passes (event 1400): " + F0(Median(Phases.Where(x => x.Phase == "register").ToList(), x => x.Applies)));
        }

        w.WriteLine();
        w.WriteLine($"deregistration: every laptop deregisters on its open connection{(kernelDatapath ? "; + kernel: until every tunnel, route and proxy entry is gone" : " (control plane only)")}{tcg}");
        string[] head = kernelDatapath
            ? ["mode", "N", "deregistrations/s", "wall s", "p50 ms", "p99 ms", "deregistrations/s incl. kernel", "wall s incl. kernel"]
            : ["mode", "N", "deregistrations/s", "wall s", "p50 ms", "p99 ms"];
        Table(w, head, Modes().Select(m => Row(m, "deregister", r =>
        {
            string[] row =
            [
                Registrations.ModeName(m),
                n.ToString("N0", CultureInfo.InvariantCulture),
                F0(Median(r, x => x.Count / x.WallSeconds)),
                F3(Median(r, x => x.WallSeconds)),
                F1(Median(r, x => P(x, 50))),
                F1(Median(r, x => P(x, 99))),
            ];
            return kernelDatapath
                ? [.. row, F0(Median(r, x => x.KernelSeconds is { } k ? x.Count / k : double.NaN)), F3(Median(r, x => x.KernelSeconds ?? double.NaN))]
                : row;
        })));

        w.WriteLine();
        w.WriteLine("every run (registrations/s control plane | incl. kernel; p50/p99 ms):");
        foreach (PhaseResult x in Phases.Where(x => x.Phase == "register").OrderBy(x => x.Mode).ThenBy(x => x.Run))
        {
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {Registrations.ModeName(x.Mode),-26} run {x.Run}: {x.Count / x.WallSeconds,8:N0}/s | {(x.KernelSeconds is { } k ? (x.Count / k).ToString("N0", CultureInfo.InvariantCulture) + "/s" : "-"),8}; {P(x, 50):0.0}/{P(x, 99):0.0} ms; {x.Retries} retried"));
        }
    }

    private void WriteHandovers(TextWriter w, string tcg)
    {
        w.WriteLine();
        if (HandoverSkipped is not null)
        {
            w.WriteLine($"handover: {HandoverSkipped}");
            return;
        }

        w.WriteLine($"handover: {HandoverSetup}{tcg}");
        Table(w,
            ["run", "move", "gap s (address change -> first reply via the new path)", "ping outage s (last reply before -> first after)", "lost echo requests", "mobile agent saw the new address s (2300)", "mobile agent registered s (2100)", "home agent logged the move s (1100)"],
            Handovers.Select(h => new[]
            {
                h.WarmUp ? "warm-up" : h.Run.ToString(CultureInfo.InvariantCulture),
                h.Direction,
                F3(h.GapSeconds),
                F3(h.OutageSeconds),
                h.Lost.ToString(CultureInfo.InvariantCulture),
                h.NoticedSeconds is { } n ? F3(n) : "-",
                h.ReRegisteredSeconds is { } g ? F3(g) : "-",
                h.RegisteredSeconds is { } s ? F3(s) : "-",
            }));
        if (Handovers.Any(h => !h.WarmUp))
        {
            double[] g = [.. Handovers.Where(h => !h.WarmUp).Select(h => h.GapSeconds).Order()];
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"handover gap over {g.Length} run(s) (warm-up moves excluded): median {MedianOf(g):0.000} s, min {g[0]:0.000} s, max {g[^1]:0.000} s{tcg}"));
        }
    }

    private IEnumerable<ClientMode> Modes() => options.Modes.Where(m => Phases.Any(r => r.Mode == m));

    private string[] Row(ClientMode mode, string phase, Func<List<PhaseResult>, string[]> make) =>
        make([.. Phases.Where(r => r.Mode == mode && r.Phase == phase)]);

    private static double P(PhaseResult r, double p) => Registrations.Percentile([.. r.LatenciesMs.Order()], p);

    private static double Median(List<PhaseResult> runs, Func<PhaseResult, double> value) => MedianOf([.. runs.Select(value).Order()]);

    private static double MedianOf(double[] s) =>
        s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;

    private static string F0(double v) => double.IsNaN(v) ? "-" : v.ToString("N0", CultureInfo.InvariantCulture);

    private static string F1(double v) => double.IsNaN(v) ? "-" : v.ToString("0.0", CultureInfo.InvariantCulture);

    private static string F2(double v) => double.IsNaN(v) ? "-" : v.ToString("0.00", CultureInfo.InvariantCulture);

    private static string F3(double v) => double.IsNaN(v) ? "-" : v.ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>A markdown-style table: text left, numbers right.</summary>
    private static void Table(TextWriter w, string[] head, IEnumerable<string[]> rows)
    {
        List<string[]> all = [head, .. rows];
        int[] width = [.. Enumerable.Range(0, head.Length).Select(c => all.Max(r => r[c].Length))];
        w.WriteLine(string.Join(" | ", head.Select((h, c) => h.PadRight(width[c]))).TrimEnd());
        w.WriteLine(string.Join("-|-", width.Select(x => new string('-', x))));
        foreach (string[] r in all.Skip(1))
        {
            w.WriteLine(string.Join(" | ", r.Select((v, c) => c == 0 ? v.PadRight(width[c]) : v.PadLeft(width[c]))));
        }
    }
}
