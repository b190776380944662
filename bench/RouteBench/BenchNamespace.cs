using System.Security.Cryptography;

namespace MobilityAgents.Bench;

/// <summary>A failure that ends the benchmark: a command that failed, or a table that does not hold what it should.</summary>
internal sealed class BenchException(string message) : Exception(message);

/// <summary>
/// Runs <c>ip</c>. Every call is checked: a non-zero exit throws with ip's own stderr.
/// </summary>
internal sealed class Ip(string workDirectory)
{
    private readonly string _stdout = Path.Combine(workDirectory, "ip.stdout");
    private readonly string _stderr = Path.Combine(workDirectory, "ip.stderr");

    /// <summary>Runs <c>ip ARGS</c> with stdout to /dev/null; returns the result (with ip's CPU time).</summary>
    public Spawn.Result Run(params string[] args) => Check(Spawn.Run("ip", args, "/dev/null", _stderr), args);

    /// <summary>Runs <c>ip ARGS</c> and returns its stdout.</summary>
    public string Capture(params string[] args)
    {
        _ = Check(Spawn.Run("ip", args, _stdout, _stderr), args);
        return File.ReadAllText(_stdout);
    }

    /// <summary>Runs <c>ip ARGS</c>; returns the exit code and stderr without throwing.</summary>
    public Spawn.Result TryRun(params string[] args) => Spawn.Run("ip", args, "/dev/null", _stderr);

    private static Spawn.Result Check(Spawn.Result r, string[] args) => r.ExitCode == 0 ? r
        : throw new BenchException($"`ip {string.Join(' ', args)}` exited with {r.ExitCode}: {r.StandardError}");
}

/// <summary>
/// A fresh network namespace <c>ma-bench-XXXXXX</c> with a veth pair (veth0, veth1) up and
/// 192.0.2.1/24 on veth0, plus a scratch directory for batch files. <see cref="Dispose"/> deletes
/// both; it is idempotent and safe to call from a signal handler while the main thread runs.
/// The root namespace is never touched: every command is <c>ip -n NS ...</c>.
/// </summary>
internal sealed class BenchNamespace : IDisposable
{
    public const string Device = "veth0";
    private int _disposed;

    private BenchNamespace(string name, string workDirectory, Ip ip)
    {
        Name = name;
        WorkDirectory = workDirectory;
        Ip = ip;
    }

    public string Name { get; }

    public string WorkDirectory { get; }

    public Ip Ip { get; }

    /// <summary>Set once the namespace exists, so a signal handler knows there is something to delete.</summary>
    private bool Created { get; set; }

    /// <summary>Creates the namespace. <paramref name="register"/> is called with the object before anything is created, so cleanup can be wired first.</summary>
    public static BenchNamespace Create(Action<BenchNamespace> register)
    {
        string dir = Directory.CreateTempSubdirectory("ma-bench-").FullName;
        var ip = new Ip(dir);
        for (int attempt = 0; ; attempt++)
        {
            string name = "ma-bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
            if (File.Exists("/run/netns/" + name))
            {
                continue; // someone else's: never touch it
            }

            var ns = new BenchNamespace(name, dir, ip);
            register(ns);
            ns.Created = true; // before the add: a signal arriving right after it must still delete the namespace
            Spawn.Result r;
            try
            {
                r = ip.TryRun("netns", "add", name);
            }
            catch
            {
                ns.Created = false; // ip could not even be started
                ns.Dispose();
                throw;
            }

            if (r.ExitCode == 0)
            {
                ns.Setup();
                return ns;
            }

            ns.Created = false; // the name was taken by someone else, or the add failed: not ours to delete
            if (attempt >= 3 || !r.StandardError.Contains("exists", StringComparison.OrdinalIgnoreCase))
            {
                ns.Dispose();
                throw new BenchException($"`ip netns add {name}` exited with {r.ExitCode}: {r.StandardError}");
            }
        }
    }

    private void Setup()
    {
        string file = Path.Combine(WorkDirectory, "setup.batch");
        File.WriteAllLines(file,
        [
            "link set lo up",
            $"link add {Device} type veth peer name veth1",
            $"link set {Device} up",
            "link set veth1 up",
            $"addr add 192.0.2.1/24 dev {Device}",
        ]);
        _ = Ip.Run("-n", Name, "-batch", file);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (Created)
        {
            try
            {
                Spawn.Result r = Ip.TryRun("netns", "del", Name);
                if (r.ExitCode != 0)
                {
                    Console.Error.WriteLine($"warning: `ip netns del {Name}` exited with {r.ExitCode}: {r.StandardError}");
                }
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine($"warning: could not delete network namespace {Name} (`ip netns del {Name}`): {e.Message}");
            }
        }

        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"warning: could not remove {WorkDirectory}: {e.Message}");
        }
    }
}
