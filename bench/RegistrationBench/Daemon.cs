using System.Diagnostics;
using System.Text.RegularExpressions;

namespace MobilityAgents.Bench.Registration;

/// <summary>
/// A daemon of ours run as a child process, inside a namespace with <c>ip netns exec NS dotnet DLL ...</c>
/// (ip execs dotnet: the pid is the daemon's, signals reach it). Its output is read line by line:
/// counters of the log events the benchmark reports, the time of each line, and a tail for
/// diagnostics. Killed (by its pid) on <see cref="Dispose"/> if still running.
/// </summary>
internal sealed partial class Daemon : IDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private readonly List<(long Time, string Line)> _watched = [];
    private readonly Func<string, bool> _watch;
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;
    private long _lines;

    private Daemon(string name, Process process, Func<string, bool> watch)
    {
        Name = name;
        _process = process;
        _watch = watch;
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, stderr: false);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, stderr: true);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public long LineCount => Interlocked.Read(ref _lines);

    /// <summary>
    /// Starts <c>ip netns exec <paramref name="ns"/> dotnet <paramref name="dll"/> ARGS</c>.
    /// <paramref name="watch"/> picks the lines whose arrival time is kept (see <see cref="Watched"/>).
    /// </summary>
    /// With <paramref name="runDirectly"/>, <paramref name="dll"/> is a program run as it is (not by dotnet).
    public static Daemon Start(string name, string ns, string dll, IEnumerable<string> args, Func<string, bool>? watch = null, bool runDirectly = false)
    {
        if (!File.Exists(dll))
        {
            throw new BenchException($"{dll} does not exist: build first (bench/registration-bench.sh builds it)");
        }

        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in runDirectly ? ["netns", "exec", ns, dll] : new[] { "netns", "exec", ns, DotnetHost(), dll })
        {
            psi.ArgumentList.Add(a);
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (string k in psi.Environment.Keys.Where(k => k.StartsWith("MA_HOMEAGENT__", StringComparison.Ordinal) || k.StartsWith("MA_MOBILEAGENT__", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(k);
        }

        return new Daemon(name, Process.Start(psi) ?? throw new BenchException($"cannot start {name}"), watch ?? (_ => false));
    }

    /// <summary>The dotnet host running the benchmark (the daemons run on the same one).</summary>
    public static string DotnetHost() =>
        Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";

    private void OnLine(string? line, bool stderr)
    {
        if (line is null)
        {
            _listening.TrySetException(new BenchException($"{Name} closed its output without listening"));
            return;
        }

        long now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _lines);
        bool watched = !stderr && _watch(line);
        lock (_tail)
        {
            _tail.Enqueue((stderr ? "stderr: " : "") + line);
            if (_tail.Count > 200)
            {
                _tail.Dequeue();
            }

            if (watched)
            {
                _watched.Add((now, line));
            }
        }

        if (!stderr && ListeningLine().Match(line) is { Success: true } m)
        {
            _listening.TrySetResult(m.Groups[1].Value);
        }
    }

    /// <summary>The https:// address of the "Listening on" line (event 1000).</summary>
    public string WaitListening(TimeSpan timeout)
    {
        try
        {
            return _listening.Task.WaitAsync(timeout).GetAwaiter().GetResult();
        }
        catch (TimeoutException)
        {
            throw new BenchException($"{Name} did not start listening within {timeout.TotalSeconds:0} s; last lines:\n{Tail(40)}");
        }
        catch (BenchException e)
        {
            throw new BenchException($"{e.Message}; last lines:\n{Tail(40)}");
        }
    }

    /// <summary>The watched lines (and their Stopwatch timestamps) that arrived at or after <paramref name="since"/>.</summary>
    public List<(long Time, string Line)> Watched(long since = 0)
    {
        lock (_tail)
        {
            return [.. _watched.Where(w => w.Time >= since)];
        }
    }

    /// <summary>Waits until a watched line matching <paramref name="match"/> arrives after <paramref name="since"/>; returns its time and text, or null on timeout.</summary>
    public (long Time, string Line)? WaitFor(Func<string, bool> match, long since, TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(start) < timeout)
        {
            lock (_tail)
            {
                foreach ((long t, string l) in _watched)
                {
                    if (t >= since && match(l))
                    {
                        return (t, l);
                    }
                }
            }

            if (HasExited)
            {
                throw new BenchException($"{Name} exited with {_process.ExitCode}; last lines:\n{Tail(40)}");
            }

            Thread.Sleep(5);
        }

        return null;
    }

    public string Tail(int lines)
    {
        lock (_tail)
        {
            return string.Join('\n', _tail.TakeLast(lines));
        }
    }

    /// <summary>CPU seconds (user + system) the daemon has used so far.</summary>
    public double CpuSeconds() => Env.ProcessCpuSeconds(Pid);

    /// <summary>Throws with the daemon's last lines if it is no longer running.</summary>
    public void ThrowIfExited()
    {
        if (HasExited)
        {
            throw new BenchException($"{Name} exited with {_process.ExitCode}; last lines:\n{Tail(40)}");
        }
    }

    /// <summary>SIGTERM, and SIGKILL if it has not gone within <paramref name="grace"/>. Returns the exit code, or null if it had to be killed.</summary>
    public int? Stop(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            _ = Tool.TryRun("kill", "-TERM", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (!_process.WaitForExit(grace))
            {
                Kill();
                return null;
            }
        }

        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Kills the daemon if it is still running (safe from a signal handler; idempotent).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Kill();
        _process.Dispose();
    }

    [GeneratedRegex(@"Listening on (https://\S+)")]
    private static partial Regex ListeningLine();
}
