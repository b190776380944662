using System.Diagnostics;
using System.Text.Json;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// A fresh network namespace for one mobile-agent test (<c>ip netns add ma-t-XXXX</c>), removed on
/// dispose even when the test failed. Names start with "ma-t-" so the CI script can sweep any left
/// by a crash. (The same as the home agent tests' TestNamespace, under its own name.)
/// </summary>
public sealed class MobileAgentTestNamespace : IDisposable
{
    public const string Prefix = "ma-t-";

    public MobileAgentTestNamespace()
    {
        Name = Prefix + Guid.NewGuid().ToString("N")[..10];
        MobileAgentOracle.Run("ip", "netns", "add", Name);
        try
        {
            MobileAgentOracle.Run("ip", "-n", Name, "link", "set", "lo", "up");
            Namespace = NetworkNamespace.OpenByName(Name);
            Handle = RouteNetlink.Open(Namespace);
        }
        catch
        {
            MobileAgentOracle.Exec("ip", "netns", "del", Name);
            throw;
        }
    }

    public string Name { get; }

    public NetworkNamespace Namespace { get; }

    public RouteNetlink Handle { get; }

    /// <summary>Runs <c>ip -n NAME args</c> and returns stdout; throws with stderr on failure.</summary>
    public string Ip(params string[] args) => MobileAgentOracle.Run(["ip", "-n", Name, .. args]);

    /// <summary>Runs <c>ip -j -n NAME args</c> and parses the JSON (the independent oracle).</summary>
    public JsonElement IpJson(params string[] args) => MobileAgentOracle.Json(["ip", "-j", "-n", Name, .. args]);

    /// <summary>Runs <c>ip netns exec NAME nft args</c> and returns stdout.</summary>
    public string Nft(params string[] args) => MobileAgentOracle.Run(["ip", "netns", "exec", Name, "nft", .. args]);

    /// <summary>Runs <c>ip netns exec NAME nft -j args</c> and parses the JSON.</summary>
    public JsonElement NftJson(params string[] args) => MobileAgentOracle.Json(["ip", "netns", "exec", Name, "nft", "-j", .. args]);

    /// <summary>Runs a shell command inside the namespace: <c>ip netns exec NAME sh -c CMD</c>.</summary>
    public (int Rc, string Stdout, string Stderr) Sh(string command) => MobileAgentOracle.Exec("ip", "netns", "exec", Name, "sh", "-c", command);

    public void Dispose()
    {
        Handle.Dispose();
        Namespace.Dispose();
        MobileAgentOracle.Exec("ip", "netns", "del", Name);
    }
}

/// <summary>iproute2 and nft as independent oracles of kernel state (tests only; the product never runs them).</summary>
public static class MobileAgentOracle
{
    public static string Run(params string[] args)
    {
        (int rc, string stdout, string stderr) = Exec(args);
        return rc == 0 ? stdout : throw new InvalidOperationException($"{string.Join(' ', args)} failed ({rc}): {stderr.Trim()}");
    }

    public static JsonElement Json(params string[] args)
    {
        string s = Run(args);
        return JsonDocument.Parse(string.IsNullOrWhiteSpace(s) ? "[]" : s).RootElement.Clone();
    }

    public static (int Rc, string Stdout, string Stderr) Exec(params string[] args)
    {
        var psi = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {args[0]}");
        // Disposing the Process leaves the redirected pipes open until the readers are finalized:
        // dispose them, or a busy test process runs past 1024 descriptors.
        using StreamReader stdoutReader = p.StandardOutput;
        using StreamReader stderrReader = p.StandardError;
        Task<string> err = stderrReader.ReadToEndAsync();
        string stdout = stdoutReader.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, err.Result);
    }
}
