namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>
/// Per-namespace sysctls: written in one namespace through <see cref="Sysctl"/>, checked there and in
/// a second namespace with <c>ip netns exec NS sysctl -n KEY</c> (the independent reader).
/// </summary>
public class SysctlTests
{
    /// <summary><c>ip netns exec NS sysctl -n KEY</c>.</summary>
    private static string SysctlIn(TestNamespace ns, string key) => Ip.Run("netns", "exec", ns.Name, "sysctl", "-n", key).Trim();

    [Fact]
    public void Ip_forward_changes_in_its_namespace_only()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        Assert.Equal("0", SysctlIn(ns, "net.ipv4.ip_forward"));
        Assert.Equal("0", SysctlIn(other, "net.ipv4.ip_forward"));

        Sysctl.SetIpForward(ns.Namespace, true);

        Assert.True(Sysctl.GetIpForward(ns.Namespace));
        Assert.Equal("1", SysctlIn(ns, "net.ipv4.ip_forward"));
        Assert.Equal("0", SysctlIn(other, "net.ipv4.ip_forward"));
        Assert.False(Sysctl.GetIpForward(other.Namespace));

        Sysctl.SetIpForward(ns.Namespace, false);

        Assert.False(Sysctl.GetIpForward(ns.Namespace));
        Assert.Equal("0", SysctlIn(ns, "net.ipv4.ip_forward"));
    }

    [Fact]
    public void Proxy_arp_changes_on_that_interface_in_that_namespace_only()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        // Same interface name in both namespaces: only the namespace tells them apart.
        ns.Handle.Links.AddVeth("s0", "s0p");
        other.Handle.Links.AddVeth("s0", "s0p");

        Sysctl.SetProxyArp(ns.Namespace, "s0", true);

        Assert.True(Sysctl.GetProxyArp(ns.Namespace, "s0"));
        Assert.Equal("1", SysctlIn(ns, "net.ipv4.conf.s0.proxy_arp"));
        Assert.Equal("0", SysctlIn(ns, "net.ipv4.conf.s0p.proxy_arp"));
        Assert.Equal("0", SysctlIn(other, "net.ipv4.conf.s0.proxy_arp"));
        Assert.False(Sysctl.GetProxyArp(other.Namespace, "s0"));

        Sysctl.SetProxyArp(ns.Namespace, "s0", false);

        Assert.Equal("0", SysctlIn(ns, "net.ipv4.conf.s0.proxy_arp"));
    }

    [Fact]
    public void Rp_filter_changes_in_its_namespace_only()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        ns.Handle.Links.AddVeth("s0", "s0p");
        other.Handle.Links.AddVeth("s0", "s0p");
        // New namespaces inherit the host's defaults for IPv4: pick a value that differs from them.
        string before = SysctlIn(other, "net.ipv4.conf.s0.rp_filter");
        int target = before == "2" ? 1 : 2;

        Sysctl.SetRpFilter(ns.Namespace, "s0", target);

        Assert.Equal(target, Sysctl.GetRpFilter(ns.Namespace, "s0"));
        Assert.Equal(target.ToString(System.Globalization.CultureInfo.InvariantCulture), SysctlIn(ns, "net.ipv4.conf.s0.rp_filter"));
        Assert.Equal(before, SysctlIn(other, "net.ipv4.conf.s0.rp_filter"));

        Sysctl.SetRpFilter(ns.Namespace, "s0", 0);
        Assert.Equal("0", SysctlIn(ns, "net.ipv4.conf.s0.rp_filter"));

        Assert.Throws<ArgumentOutOfRangeException>(() => Sysctl.SetRpFilter(ns.Namespace, "s0", 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sysctl.SetRpFilter(ns.Namespace, "s0", -1));
        Assert.Equal("0", SysctlIn(ns, "net.ipv4.conf.s0.rp_filter"));
    }

    [Fact]
    public void Src_valid_mark_changes_in_its_namespace_only()
    {
        using var ns = new TestNamespace();
        using var other = new TestNamespace();
        Assert.Equal("0", SysctlIn(other, "net.ipv4.conf.all.src_valid_mark"));

        Sysctl.SetSrcValidMark(ns.Namespace, true);

        Assert.True(Sysctl.GetSrcValidMark(ns.Namespace));
        Assert.Equal("1", SysctlIn(ns, "net.ipv4.conf.all.src_valid_mark"));
        Assert.Equal("0", SysctlIn(other, "net.ipv4.conf.all.src_valid_mark"));

        Sysctl.SetSrcValidMark(ns.Namespace, false);
        Assert.Equal("0", SysctlIn(ns, "net.ipv4.conf.all.src_valid_mark"));
    }

    [Fact]
    public void Generic_read_and_write_by_segments_and_interface_names_with_dots()
    {
        using var ns = new TestNamespace();
        // A dot in an interface name is one segment, not a key separator.
        ns.Handle.Links.AddVeth("s0.5", "s0p");

        Sysctl.Write(ns.Namespace, "1", "net", "ipv4", "conf", "s0.5", "proxy_arp");

        Assert.Equal("1", Sysctl.Read(ns.Namespace, "net", "ipv4", "conf", "s0.5", "proxy_arp"));
        // sysctl(8) writes the dot in a name as '/'.
        Assert.Equal("1", SysctlIn(ns, "net.ipv4.conf.s0/5.proxy_arp"));
        Assert.True(Sysctl.GetProxyArp(ns.Namespace, "s0.5"));
    }

    [Fact]
    public void A_missing_key_fails_naming_the_key_and_the_namespace()
    {
        using var ns = new TestNamespace();

        IOException e = Assert.Throws<IOException>(() => Sysctl.GetProxyArp(ns.Namespace, "nosuchif0"));

        Assert.Contains("net.ipv4.conf.nosuchif0.proxy_arp", e.Message, StringComparison.Ordinal);
        Assert.Contains(ns.Name, e.Message, StringComparison.Ordinal);
        Assert.Throws<IOException>(() => Sysctl.SetProxyArp(ns.Namespace, "nosuchif0", true));
    }

    [Theory]
    [InlineData("net", "ipv4", "..", "ip_forward")]
    [InlineData("net", "ipv4", "a/b")]
    [InlineData("kernel", "hostname")]
    [InlineData("net")]
    [InlineData("net", "")]
    public void Keys_outside_net_or_with_path_tricks_are_rejected(params string[] segments)
    {
        using var ns = new TestNamespace();

        Assert.Throws<ArgumentException>(() => Sysctl.Read(ns.Namespace, segments));
        if (segments is ["net", ..])
        {
            // (Never tried for keys outside net.: a bug would write the host's own settings.)
            Assert.Throws<ArgumentException>(() => Sysctl.Write(ns.Namespace, "1", segments));
        }
    }
}
