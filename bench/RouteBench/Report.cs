using System.Globalization;
using System.Text.Json;

namespace MobilityAgents.Bench;

/// <summary>Medians, ops/s and the verdict; written as a table and, with --json, as JSON.</summary>
internal sealed class Report(Options options, Dictionary<(string Impl, string Phase), List<Sample>> samples, Sample ipStartup, string kernel, string iproute)
{
    private static readonly Func<Sample, double> Wall = s => s.Wall;
    private static readonly Func<Sample, double> Cpu = s => s.Cpu;

    private int N => options.Routes;

    private double? Seconds(string impl, string phase, Func<Sample, double> value) =>
        samples.TryGetValue((impl, phase), out List<Sample>? s) && s.Count > 0 ? Bench.Median(s, value) : null;

    private double? Ops(string impl, string phase, Func<Sample, double> value) => Seconds(impl, phase, value) is { } t && t > 0 ? N / t : null;

    /// <summary>ip's ops/s with its start-up (process, netns switch, socket: an empty batch) taken out of the time.</summary>
    private double? IpNetOps(string impl, string phase, Func<Sample, double> value)
    {
        double startup = value(ipStartup);
        return Seconds(impl, phase, value) is { } t && t - startup > 0 ? N / (t - startup) : null;
    }

    /// <summary>
    /// The target: the batch API at least as fast (wall clock) as ip -batch in every phase. Judged
    /// against ip's figure with its start-up subtracted (the stricter comparison); where subtracting
    /// leaves nothing, against the plain figure.
    /// </summary>
    private bool PhaseMeetsTarget(string phase) =>
        Ops(Bench.MaBatch, phase, Wall) is { } ma && (IpNetOps(Bench.IpBatch, phase, Wall) ?? Ops(Bench.IpBatch, phase, Wall)) is { } ip && ma >= ip;

    public bool TargetMet => Bench.Phases.All(PhaseMeetsTarget);

    public void WriteTable(TextWriter w)
    {
        w.WriteLine();
        w.WriteLine($"route-bench: {N:N0} host routes /32, dev veth0 table {Workload.Table} proto {Workload.Protocol}, median of {options.Runs} run(s)");
        w.WriteLine($"kernel {kernel}; {iproute}; .NET {Environment.Version}; {Environment.ProcessorCount} CPU(s); load average {LoadAverage()}");
        w.WriteLine($"ip start-up (ip -n NS -batch of an empty file): {ipStartup.Wall * 1000:F2} ms wall, {ipStartup.Cpu * 1000:F2} ms CPU");
        w.WriteLine();
        w.WriteLine("wall clock:");
        Table(w, Wall, "ops/s");
        w.WriteLine();
        w.WriteLine("CPU time (user + system of the process doing the work; the kernel's handling of each request is in its system time):");
        Table(w, Cpu, "ops/CPU-s");
        w.WriteLine();
        w.WriteLine("median seconds per phase (wall / CPU):");
        foreach (string phase in Bench.Phases)
        {
            w.WriteLine($"  {phase,-8} batch {Sec(Bench.MaBatch, phase)}  single {Sec(Bench.MaSingle, phase)}  ip -batch {Sec(Bench.IpBatch, phase)}" +
                (phase == "dump" ? $"  ip -j {Sec(Bench.IpJson, phase)}" : ""));
        }

        w.WriteLine();
        w.WriteLine("(the target is judged on wall-clock ops/s against ip's figures with its start-up subtracted; the dump (ip -j) row is for information)");
        w.WriteLine($"target met: {(TargetMet ? "yes" : "no")} (every phase >= ip -batch)");
    }

    private void Table(TextWriter w, Func<Sample, double> v, string unit)
    {
        string[] head = ["phase", $"MobilityAgents batch {unit}", $"MobilityAgents single {unit}", $"ip -batch {unit}", $"ip -batch {unit} excl. start-up", "ratio (batch/ip)", "ratio (batch/ip excl. start-up)"];
        var rows = new List<string[]>();
        foreach (string phase in Bench.Phases)
        {
            rows.Add(
            [
                phase,
                Format(Ops(Bench.MaBatch, phase, v)),
                phase == "dump" ? "(same request)" : Format(Ops(Bench.MaSingle, phase, v)),
                Format(Ops(Bench.IpBatch, phase, v)),
                Format(IpNetOps(Bench.IpBatch, phase, v)),
                Ratio(Ops(Bench.MaBatch, phase, v), Ops(Bench.IpBatch, phase, v)),
                Ratio(Ops(Bench.MaBatch, phase, v), IpNetOps(Bench.IpBatch, phase, v)),
            ]);
        }

        rows.Add(
        [
            "dump (ip -j)",
            Format(Ops(Bench.MaBatch, "dump", v)),
            "",
            Format(Ops(Bench.IpJson, "dump", v)),
            Format(IpNetOps(Bench.IpJson, "dump", v)),
            Ratio(Ops(Bench.MaBatch, "dump", v), Ops(Bench.IpJson, "dump", v)),
            Ratio(Ops(Bench.MaBatch, "dump", v), IpNetOps(Bench.IpJson, "dump", v)),
        ]);
        int[] width = [.. head.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length)))];
        w.WriteLine(string.Join(" | ", head.Select((h, i) => h.PadRight(width[i]))).TrimEnd());
        w.WriteLine(string.Join("-|-", width.Select(x => new string('-', x))));
        foreach (string[] r in rows)
        {
            w.WriteLine(string.Join(" | ", r.Select((c, i) => i == 0 ? c.PadRight(width[i]) : c.PadLeft(width[i]))));
        }
    }

    public void WriteJson(Stream stream)
    {
        using var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        j.WriteStartObject();
        j.WriteString("kernel", kernel);
        j.WriteString("iproute2", iproute);
        j.WriteString("dotnet", Environment.Version.ToString());
        j.WriteNumber("cpus", Environment.ProcessorCount);
        j.WriteString("loadAverage", LoadAverage());
        j.WriteNumber("routes", N);
        j.WriteNumber("runs", options.Runs);
        j.WriteNumber("ipStartupSeconds", ipStartup.Wall);
        j.WriteNumber("ipStartupCpuSeconds", ipStartup.Cpu);
        j.WriteStartArray("phases");
        foreach (string phase in Bench.Phases.Append("dump-json"))
        {
            string p = phase == "dump-json" ? "dump" : phase;
            string ip = phase == "dump-json" ? Bench.IpJson : Bench.IpBatch;
            bool dump = p == "dump";
            j.WriteStartObject();
            j.WriteString("phase", phase);
            Number(j, "maBatchOpsPerSecond", Ops(Bench.MaBatch, p, Wall));
            Number(j, "maSingleOpsPerSecond", dump ? null : Ops(Bench.MaSingle, p, Wall));
            Number(j, "ipOpsPerSecond", Ops(ip, p, Wall));
            Number(j, "ipOpsPerSecondExclStartup", IpNetOps(ip, p, Wall));
            Number(j, "ratio", RatioValue(Ops(Bench.MaBatch, p, Wall), Ops(ip, p, Wall)));
            Number(j, "ratioExclStartup", RatioValue(Ops(Bench.MaBatch, p, Wall), IpNetOps(ip, p, Wall)));
            Number(j, "maBatchOpsPerCpuSecond", Ops(Bench.MaBatch, p, Cpu));
            Number(j, "maSingleOpsPerCpuSecond", dump ? null : Ops(Bench.MaSingle, p, Cpu));
            Number(j, "ipOpsPerCpuSecond", Ops(ip, p, Cpu));
            Number(j, "ipOpsPerCpuSecondExclStartup", IpNetOps(ip, p, Cpu));
            if (phase != "dump-json")
            {
                j.WriteBoolean("meetsTarget", PhaseMeetsTarget(p));
            }

            j.WriteStartObject("runs");
            foreach (string impl in new[] { Bench.MaBatch, Bench.MaSingle, ip })
            {
                if (samples.TryGetValue((impl, p), out List<Sample>? s))
                {
                    j.WriteStartArray(impl);
                    foreach (Sample x in s)
                    {
                        j.WriteStartObject();
                        j.WriteNumber("wallSeconds", x.Wall);
                        j.WriteNumber("cpuSeconds", x.Cpu);
                        j.WriteEndObject();
                    }

                    j.WriteEndArray();
                }
            }

            j.WriteEndObject();
            j.WriteEndObject();
        }

        j.WriteEndArray();
        j.WriteBoolean("targetMet", TargetMet);
        j.WriteEndObject();
        j.Flush();
        stream.WriteByte((byte)'\n');
    }

    private static void Number(Utf8JsonWriter j, string name, double? value)
    {
        if (value is { } v)
        {
            j.WriteNumber(name, Math.Round(v, 3));
        }
        else
        {
            j.WriteNull(name);
        }
    }

    /// <summary>The 1-minute load average: on a shared machine the wall-clock figures mean little without it.</summary>
    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private string Sec(string impl, string phase) =>
        Seconds(impl, phase, Wall) is { } t && Seconds(impl, phase, Cpu) is { } c
            ? string.Create(CultureInfo.InvariantCulture, $"{t:F4}/{c:F4}s")
            : "-";

    private static string Format(double? v) => v is { } x ? x.ToString("N0", CultureInfo.InvariantCulture) : "n/a";

    private static double? RatioValue(double? a, double? b) => a is { } x && b is { } y && y > 0 ? x / y : null;

    private static string Ratio(double? a, double? b) => RatioValue(a, b) is { } r ? r.ToString("F2", CultureInfo.InvariantCulture) + "x" : "n/a";
}
