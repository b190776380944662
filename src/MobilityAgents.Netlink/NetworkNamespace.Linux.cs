using System.Runtime.ExceptionServices;
using System.Runtime.Versioning;
using Tmds.Linux;

namespace MobilityAgents.Netlink;

/// <summary>
/// A network namespace to open sockets and files in: by name (<c>/run/netns/NAME</c>, as
/// <c>ip netns add</c> makes them), by path (<c>/proc/PID/ns/net</c>), or the caller's own.
/// Work runs on a dedicated thread that setns(2)-es in and back; sockets and files opened there
/// stay bound to the namespace after the thread is gone, so the rest of the program can use them
/// from any thread. A thread that cannot get back to its original namespace is abandoned: it is
/// never a pool thread, so it simply ends and no other work ever runs on it.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class NetworkNamespace : IDisposable
{
    private const int CLONE_NEWNET = 0x40000000;
    private readonly int _fd; // -1: the caller's own namespace (no setns)

    private NetworkNamespace(int fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    /// <summary>The namespace the process runs in; <see cref="Run{T}"/> calls the function directly.</summary>
    public static NetworkNamespace Current { get; } = new(-1, "(current)");

    /// <summary>For messages: the name, or the path it was opened from.</summary>
    public string Name { get; }

    /// <summary>True for <see cref="Current"/>.</summary>
    public bool IsCurrent => _fd < 0;

    /// <summary>Opens /run/netns/<paramref name="name"/>. Equivalent to the namespace <c>ip -n NAME</c> uses.</summary>
    public static NetworkNamespace OpenByName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('/', StringComparison.Ordinal) || name is "." or "..")
        {
            throw new ArgumentException($"invalid network namespace name '{name}'", nameof(name));
        }

        return OpenPath("/run/netns/" + name, name);
    }

    /// <summary>Opens a namespace file such as /proc/1234/ns/net or a bind mount of one.</summary>
    public static NetworkNamespace OpenPath(string path) => OpenPath(path, path);

    private static unsafe NetworkNamespace OpenPath(string path, string name)
    {
        byte[] p = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* pp = p)
        {
            fd = LibC.open(pp, LibC.O_RDONLY | LibC.O_CLOEXEC);
        }

        if (fd < 0)
        {
            throw new NetlinkSocketException($"open network namespace {path}", LibC.errno);
        }

        return new NetworkNamespace(fd, name);
    }

    /// <summary>Runs <paramref name="work"/> inside the namespace and returns its result (exceptions propagate).</summary>
    public T Run<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_fd < 0)
        {
            return work();
        }

        T result = default!;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            int home = OpenOwn();
            try
            {
                if (LibC.setns(_fd, CLONE_NEWNET) != 0)
                {
                    throw new NetlinkSocketException($"setns into network namespace {Name}", LibC.errno);
                }

                try
                {
                    result = work();
                }
                finally
                {
                    // If this fails the thread is stuck in the wrong namespace; it is a dedicated
                    // thread that ends right after this, so it is abandoned and never reused.
                    _ = LibC.setns(home, CLONE_NEWNET);
                }
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                LibC.close(home);
            }
        })
        {
            IsBackground = true,
            Name = "netns " + Name,
        };
        thread.Start();
        thread.Join();
        error?.Throw();
        return result;
    }

    /// <summary>Runs <paramref name="work"/> inside the namespace.</summary>
    public void Run(Action work) => Run(() =>
    {
        work();
        return 0;
    });

    private static unsafe int OpenOwn()
    {
        byte[] p = "/proc/thread-self/ns/net\0"u8.ToArray();
        fixed (byte* pp = p)
        {
            int fd = LibC.open(pp, LibC.O_RDONLY | LibC.O_CLOEXEC);
            return fd >= 0 ? fd : throw new NetlinkSocketException("open /proc/thread-self/ns/net", LibC.errno);
        }
    }

    private bool _disposed;

    public void Dispose()
    {
        if (!_disposed && _fd >= 0)
        {
            LibC.close(_fd);
        }

        _disposed = true;
    }

    public override string ToString() => Name;
}
