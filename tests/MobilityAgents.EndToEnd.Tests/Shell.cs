using System.Diagnostics;

namespace MobilityAgents.EndToEnd.Tests;

/// <summary>
/// One bash process per batch of commands: under TCG every process start costs 0.3-5 s, so the
/// topology, a move and each kernel snapshot are one script each (iproute2 batches inside).
/// </summary>
public static class Shell
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    /// <summary>Runs <paramref name="script"/> with <c>bash -euo pipefail</c>; returns stdout, throws with stderr on failure.</summary>
    public static async Task<string> RunAsync(string script, bool check = true)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "-euo", "pipefail", "-s" })
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start bash");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        await p.StandardInput.WriteAsync(script);
        p.StandardInput.Close();
        try
        {
            await p.WaitForExitAsync(CancellationToken.None).WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            p.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"script did not finish within {Timeout.TotalSeconds:0} s:\n{script}");
        }

        string output = await stdout;
        string errors = await stderr;
        if (check && p.ExitCode != 0)
        {
            throw new Xunit.Sdk.XunitException($"script failed ({p.ExitCode}): {errors.Trim()}\n--- script ---\n{script}\n--- stdout ---\n{output}");
        }

        return output;
    }
}
