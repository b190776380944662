using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>
/// The home agent daemon as a real process in a network namespace:
/// <c>ip netns exec NS dotnet MobilityAgents.HomeAgent.dll --config FILE</c> (ip execs dotnet, so
/// signals go straight to the daemon). Killed on dispose if still running.
/// </summary>
public sealed partial class HomeAgentProcess : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new(), _stderr = new();
    private readonly TaskCompletionSource<int> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HomeAgentProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _listening.TrySetException(new InvalidOperationException("the home agent closed its output without listening"));
                return;
            }

            lock (_stdout)
            {
                _stdout.AppendLine(e.Data);
            }

            if (ListeningLine().Match(e.Data) is { Success: true } m)
            {
                _listening.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
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

    public bool HasExited => _process.HasExited;

    /// <summary>Starts the daemon in <paramref name="netns"/> with <paramref name="configFile"/>.</summary>
    public static HomeAgentProcess Start(string netns, string configFile)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "home-agent", "MobilityAgents.HomeAgent.dll");
        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "netns", "exec", netns, "dotnet", dll, "--config", configFile })
        {
            psi.ArgumentList.Add(a);
        }

        foreach (string k in psi.Environment.Keys.Where(k => k.StartsWith("MA_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(k);
        }

        return new HomeAgentProcess(Process.Start(psi)!);
    }

    /// <summary>The port from the daemon's "Listening on https://ADDR:PORT" log line (event 1000).</summary>
    public async Task<int> ListeningAsync()
    {
        try
        {
            return await _listening.Task.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new Xunit.Sdk.XunitException($"the home agent did not start listening: {e.Message}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }
    }

    /// <summary>kill -SIGNAL (TERM, KILL, STOP, CONT).</summary>
    public void Signal(string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(CultureInfo.InvariantCulture)]);
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

    [GeneratedRegex(@"Listening on https://[0-9.]+:(\d+)")]
    private static partial Regex ListeningLine();
}
