using System.Diagnostics;
using System.Globalization;
using System.Text;
using MobilityAgents.MobileAgent.Configuration;
using static MobilityAgents.MobileAgent.Tests.Lab;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>The daemon as a real process: `dotnet MobilityAgents.MobileAgent.dll ...`.</summary>
public sealed class ProcessTests(TestPki pki)
{
    [Fact]
    public async Task Help_lists_every_key_with_its_default_and_exits_0()
    {
        (int code, string stdout, _) = await RunAsync(["--help"]);
        Assert.Equal(0, code);
        foreach (ConfigurationKey k in MobileAgentConfiguration.Keys)
        {
            Assert.Contains(k.Name, stdout, StringComparison.Ordinal);
            Assert.Contains(k.Default, stdout, StringComparison.Ordinal);
        }

        Assert.Contains("--config PATH", stdout, StringComparison.Ordinal);
        Assert.Contains(MobileAgentConfiguration.EnvironmentPrefix, stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("LifetimeSeconds", "-5", "LifetimeSeconds: '-5' is not a whole number in 0..86400")]
    [InlineData("HomeAgent", "http://192.0.2.1:4433", "HomeAgent: 'http://192.0.2.1:4433' is not https://host:port")]
    [InlineData("HomeAddress", "192.0.2.077", "HomeAddress: '192.0.2.077' is not an IPv4 address")]
    [InlineData("TunnelName", "tun0", "TunnelName: 'tun0' does not start with 'ma'")]
    [InlineData("TcpPorts", "25,70000", "TcpPorts: '70000' is not a TCP port")]
    [InlineData("Namespace", "ma-t-does-not-exist", "Namespace: 'ma-t-does-not-exist' is not a network namespace")]
    [InlineData("Colour", "blue", "Colour: unknown key")]
    public async Task A_bad_key_fails_the_start_with_status_78_and_a_message_naming_it(string key, string value, string message)
    {
        string config = WriteConfig(pki);
        (int code, string stdout, string stderr) = await RunAsync(["--config", config, $"--{key}={value}"]);
        Assert.Equal(MobileAgentHost.ExitConfigurationError, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr + stdout, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task Unreadable_certificate_files_fail_the_start_naming_the_key()
    {
        string config = WriteConfig(pki);
        (int code, _, string stderr) = await RunAsync(["--config", config, "--Certificate=/nonexistent/alice.pem", "--Ca", pki.AliceKey]);
        Assert.Equal(MobileAgentHost.ExitConfigurationError, code);
        Assert.Contains("Certificate: '/nonexistent/alice.pem' does not exist", stderr, StringComparison.Ordinal);
        Assert.Contains("Ca: ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_daemon_registers_and_on_SIGTERM_deregisters_and_exits_0()
    {
        await using Lab lab = await StartAsync(pki);
        string config = WriteConfig(pki, lab);
        using Process p = Start(["--config", config]);
        var stdout = new StringBuilder();
        p.OutputDataReceived += (_, e) =>
        {
            lock (stdout)
            {
                stdout.AppendLine(e.Data);
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            lock (stdout)
            {
                stdout.AppendLine(e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            await lab.BindingsWhenAsync(l => l.Count == 1 && l[0].CareOfAddress == CareOfA, "the daemon registered");

            using (Process kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            await p.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
            p.WaitForExit(); // drains the redirected output
            string log;
            lock (stdout)
            {
                log = stdout.ToString();
            }

            Assert.True(p.ExitCode == 0, $"exit status {p.ExitCode}\n{log}");
            Assert.True(log.Contains("Deregistered binding", StringComparison.Ordinal), log);
            Assert.Empty(await lab.BindingsAsync());
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>A valid configuration file for alice (the lab's endpoint and laptop namespace if given).</summary>
    private static string WriteConfig(TestPki pki, Lab? lab = null)
    {
        string path = Path.Combine(pki.Directory, $"mobile-agent-{Guid.NewGuid():N}.json");
        string endpoint = lab?.Endpoint ?? $"https://{HomeAgentAddress}:4433";
        string ns = lab is null ? "" : $", \"Namespace\": \"{lab.Laptop}\"";
        File.WriteAllText(path, $$"""
            {
              "HomeAgent": "{{endpoint}}",
              "Certificate": "alice.pem",
              "PrivateKey": "alice.key",
              "Ca": "ca.pem",
              "DeviceId": "alice-laptop",
              "LifetimeSeconds": 6{{ns}}
            }
            """);
        return path;
    }

    private static Process Start(IEnumerable<string> args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "mobile-agent", "MobilityAgents.MobileAgent.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (string k in psi.Environment.Keys.Where(k => k.StartsWith("MA_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(k);
        }

        return Process.Start(psi)!;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(IEnumerable<string> args)
    {
        using Process p = Start(args);
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        return (p.ExitCode, await stdout, await stderr);
    }
}
