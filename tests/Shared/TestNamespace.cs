using System.Diagnostics;
using System.Text.Json;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Testing;

/// <summary>
/// A fresh network namespace for one test (<c>ip netns add ma-t-XXXX</c>), removed on dispose even
/// when the test failed. Names start with "ma-t-" so the CI script can sweep any left by a crash.
/// One source for the kernel test projects (linked into each by its .csproj).
/// </summary>
public sealed class TestNamespace : IDisposable
{
    public const string Prefix = "ma-t-";

    public TestNamespace()
    {
        Name = Prefix + Guid.NewGuid().ToString("N")[..10];
        Ip.Run("netns", "add", Name);
        try
        {
            Ip.Run("-n", Name, "link", "set", "lo", "up");
            Namespace = NetworkNamespace.OpenByName(Name);
            Handle = RouteNetlink.Open(Namespace);
        }
        catch
        {
            Ip.Run("netns", "del", Name);
            throw;
        }
    }

    public string Name { get; }

    public NetworkNamespace Namespace { get; }

    public RouteNetlink Handle { get; }

    /// <summary>Runs <c>ip -n NAME args</c> and returns stdout; throws with stderr on failure.</summary>
    public string IpCmd(params string[] args) => Ip.Run(["-n", Name, .. args]);

    /// <summary>Runs <c>ip -j -n NAME args</c> and parses the JSON (the independent oracle).</summary>
    public JsonElement IpJson(params string[] args) => Ip.Json(["-n", Name, .. args]);

    public void Dispose()
    {
        Handle.Dispose();
        Namespace.Dispose();
        Ip.TryRun("netns", "del", Name);
    }
}

/// <summary>iproute2 as an independent oracle of kernel state (tests only; the product never runs ip).</summary>
public static class Ip
{
    public static string Run(params string[] args)
    {
        (int rc, string stdout, string stderr) = Exec(args);
        return rc == 0 ? stdout : throw new InvalidOperationException($"ip {string.Join(' ', args)} failed ({rc}): {stderr.Trim()}");
    }

    public static bool TryRun(params string[] args) => Exec(args).Rc == 0;

    public static JsonElement Json(params string[] args)
    {
        string s = Run(["-j", .. args]);
        return JsonDocument.Parse(string.IsNullOrWhiteSpace(s) ? "[]" : s).RootElement.Clone();
    }

    public static (int Rc, string Stdout, string Stderr) Exec(params string[] args)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start ip");
        // Dispose the redirected pipes now: Process.Dispose leaves them to the finalizer, and a
        // long run would otherwise pile up file descriptors.
        using StreamReader stdoutReader = p.StandardOutput;
        using StreamReader stderrReader = p.StandardError;
        Task<string> err = stderrReader.ReadToEndAsync();
        string stdout = stdoutReader.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, err.Result);
    }
}
