using System.Diagnostics;
using System.Globalization;

namespace MobilityAgents.EndToEnd.Tests;

/// <summary>
/// A long-running child process (a daemon, a pinger) whose stdout and stderr lines are collected
/// as they come. Started through <c>ip netns exec NS</c> where a namespace is given (ip execs the
/// program: the pid is the program's, so signals reach it directly). Killed with its process tree
/// on dispose if still running.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly TaskCompletionSource _outputClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _errorClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
        _process.OutputDataReceived += (_, e) => Add(e.Data, "", _outputClosed);
        _process.ErrorDataReceived += (_, e) => Add(e.Data, "stderr: ", _errorClosed);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>For messages: alice, bob, home-agent, ping.</summary>
    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Every line so far, stdout and stderr interleaved (stderr lines prefixed "stderr: ").</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public string Output => string.Join('\n', Lines);

    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="args"/>, inside network namespace
    /// <paramref name="netns"/> if given. MA_HOMEAGENT__* and MA_MOBILEAGENT__* variables of this
    /// process are not passed on (they would override the daemons' configuration files).
    /// </summary>
    public static ChildProcess Start(string name, string? netns, string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(netns is null ? program : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (netns is not null)
        {
            foreach (string a in new[] { "netns", "exec", netns, program })
            {
                psi.ArgumentList.Add(a);
            }
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (string k in psi.Environment.Keys.Where(k => k.StartsWith("MA_HOMEAGENT__", StringComparison.Ordinal) || k.StartsWith("MA_MOBILEAGENT__", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(k);
        }

        foreach ((string k, string v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        return new ChildProcess(name, Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {program}"));
    }

    /// <summary>
    /// Waits until a line from index <paramref name="from"/> on satisfies <paramref name="match"/>
    /// (lines already there count) and returns it. Fails at <paramref name="timeout"/>, or at once
    /// if the process exits without such a line.
    /// </summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what, int from = 0)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            string? line = Lines.Skip(from).FirstOrDefault(match);
            if (line is not null)
            {
                return line;
            }

            if (_process.HasExited)
            {
                await DrainAsync();
                line = Lines.Skip(from).FirstOrDefault(match);
                return line ?? throw new Xunit.Sdk.XunitException($"{Name} exited ({_process.ExitCode}) before {what}");
            }

            if (deadline.Elapsed > timeout)
            {
                throw new Xunit.Sdk.XunitException($"{Name}: no {what} within {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Waits until <paramref name="predicate"/> holds for the lines so far (polled), or fails at <paramref name="timeout"/>.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<string>, bool> predicate, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!predicate(Lines))
        {
            if (deadline.Elapsed > timeout)
            {
                throw new Xunit.Sdk.XunitException($"{Name}: no {what} within {timeout.TotalSeconds:0} s");
            }

            if (_process.HasExited)
            {
                throw new Xunit.Sdk.XunitException($"{Name} exited ({_process.ExitCode}) before {what}");
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>kill(2) with <paramref name="signal"/> (15 TERM, 9 KILL), without starting a process.</summary>
    public void Signal(int signal)
    {
        if (!_process.HasExited && Tmds.Linux.LibC.kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {_process.Id} ({Name}): errno {Tmds.Linux.LibC.errno}");
        }
    }

    /// <summary>Waits for the process to end and returns its exit status, or fails at <paramref name="timeout"/>.</summary>
    public async Task<int> ExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(timeout, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"{Name} did not exit within {timeout.TotalSeconds:0} s");
        }

        await DrainAsync();
        return _process.ExitCode;
    }

    /// <summary>
    /// The time stamp a daemon's console logger put at the start of <paramref name="line"/>
    /// ("2026-11-25T02:42:32.486Z info: ..."), as Unix seconds (the clock ping -D and date +%s use).
    /// </summary>
    public static double LogTime(string line)
    {
        int space = line.IndexOf(' ', StringComparison.Ordinal);
        return DateTimeOffset.Parse(space < 0 ? line : line[..space], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUnixTimeMilliseconds() / 1000.0;
    }

    /// <summary>The last <paramref name="count"/> lines, for failure reports.</summary>
    public string Tail(int count)
    {
        IReadOnlyList<string> lines = Lines;
        return string.Join('\n', lines.Skip(Math.Max(0, lines.Count - count)));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
        }

        _process.Dispose();
    }

    private async Task DrainAsync() =>
        await Task.WhenAll(_outputClosed.Task, _errorClosed.Task).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    private void Add(string? line, string prefix, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }

        lock (_lines)
        {
            _lines.Add(prefix + line);
        }
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} (pid {Pid})");
}
