using MobilityAgents.Netlink;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary><see cref="NetworkNamespace"/>: opening by name, and running work inside a namespace.</summary>
public class NamespaceTests
{
    /// <summary>The calling thread's network namespace, as the kernel names it ("net:[4026531840]").</summary>
    private static string ThreadNamespace() => new FileInfo("/proc/thread-self/ns/net").LinkTarget!;

    /// <summary>The identity of a namespace as seen by a process started inside it with <c>ip netns exec</c>.</summary>
    private static string NamespaceOfProcessIn(TestNamespace ns) => Ip.Run("netns", "exec", ns.Name, "readlink", "/proc/self/ns/net").Trim();

    [Fact]
    public void OpenByName_of_a_missing_namespace_fails_naming_it()
    {
        string name = TestNamespace.Prefix + "missing-" + Guid.NewGuid().ToString("N")[..6];

        NetlinkSocketException e = Assert.Throws<NetlinkSocketException>(() => NetworkNamespace.OpenByName(name));

        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
        Assert.Contains("ENOENT", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData(".")]
    public void OpenByName_rejects_names_that_are_not_a_single_path_segment(string bad)
    {
        Assert.Throws<ArgumentException>(() => NetworkNamespace.OpenByName(bad));
    }

    [Fact]
    public void Run_executes_inside_the_namespace_and_leaves_the_calling_thread_where_it_was()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        string before = ThreadNamespace();

        string inside = ns.Namespace.Run(ThreadNamespace);
        string insideOther = other.Namespace.Run(ThreadNamespace);

        Assert.Equal(NamespaceOfProcessIn(ns), inside);
        Assert.Equal(NamespaceOfProcessIn(other), insideOther);
        Assert.NotEqual(before, inside);
        Assert.NotEqual(inside, insideOther);
        Assert.Equal(before, ThreadNamespace());
        Assert.Equal(before, NetworkNamespace.Current.Run(ThreadNamespace));
        Assert.True(NetworkNamespace.Current.IsCurrent);
        Assert.False(ns.Namespace.IsCurrent);
    }

    [Fact]
    public void Run_reads_the_namespace_own_proc_sys_net()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        // Set differently by an independent actor, then read from inside each.
        Ip.Run("netns", "exec", ns.Name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");

        Assert.Equal("1", ns.Namespace.Run(() => File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim()));
        Assert.Equal("0", other.Namespace.Run(() => File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim()));
    }

    [Fact]
    public void A_socket_opened_inside_sees_that_namespace_links_from_any_thread()
    {
        using var ns = new TestNamespace();
        ns.IpCmd("link", "add", "only-here", "type", "veth", "peer", "name", "only-herep");

        // The handle's socket was opened on a thread inside the namespace; it is used here, outside.
        using RouteNetlink h = RouteNetlink.Open(ns.Namespace);
        Assert.Contains(h.Links.List(), l => l.Name == "only-here");
        Assert.Equal(Oracle.LinkNames(ns), h.Links.List().Select(l => l.Name).Order(StringComparer.Ordinal));
        Assert.Equal(ns.Name, h.Socket.Namespace);
    }

    [Fact]
    public void Run_returns_the_result_and_propagates_exceptions()
    {
        using var ns = new TestNamespace();

        Assert.Equal(42, ns.Namespace.Run(() => 42));
        var thrown = new InvalidOperationException("from inside");
        InvalidOperationException caught = Assert.Throws<InvalidOperationException>(() => ns.Namespace.Run(() => throw thrown));
        Assert.Same(thrown, caught);
        // The original stack is kept.
        Assert.Contains(nameof(Run_returns_the_result_and_propagates_exceptions), caught.StackTrace, StringComparison.Ordinal);

        bool ran = false;
        ns.Namespace.Run(() => ran = true);
        Assert.True(ran);
        Assert.Throws<FormatException>(() => ns.Namespace.Run(() => throw new FormatException()));

        // And the namespace is still usable after a failure.
        Assert.Equal(7, ns.Namespace.Run(() => 7));
    }

    [Fact]
    public void A_disposed_namespace_refuses_work()
    {
        using var ns = new TestNamespace();
        NetworkNamespace opened = NetworkNamespace.OpenByName(ns.Name);
        Assert.Equal(1, opened.Run(() => 1));

        opened.Dispose();

        Assert.Throws<ObjectDisposedException>(() => opened.Run(() => 1));
        opened.Dispose(); // twice is fine
    }
}
