using System.Runtime.Versioning;
using MobilityAgents.Netlink;

namespace MobilityAgents.Rtnetlink;

/// <summary>
/// Per-namespace network sysctls, read and written through /proc/sys/net of the right namespace
/// (the file is opened from a thread inside it: /proc/sys/net shows the opener's namespace).
/// Keys are written as sysctl(8) does, with dots: <c>net.ipv4.ip_forward</c>; an interface name
/// is one segment even if it contains a dot (use the segment overloads).
/// </summary>
[SupportedOSPlatform("linux")]
public static class Sysctl
{
    /// <summary>Reads a value, trimmed. Equivalent to: <c>ip netns exec NS sysctl -n KEY</c>.</summary>
    public static string Read(NetworkNamespace netns, params string[] segments)
    {
        ArgumentNullException.ThrowIfNull(netns);
        string path = PathOf(segments);
        return netns.Run(() =>
        {
            try
            {
                return File.ReadAllText(path).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"sysctl -n {KeyOf(segments)} in network namespace {netns.Name}: {e.Message}", e);
            }
        });
    }

    /// <summary>Writes a value. Equivalent to: <c>ip netns exec NS sysctl -w KEY=VALUE</c>.</summary>
    public static void Write(NetworkNamespace netns, string value, params string[] segments)
    {
        ArgumentNullException.ThrowIfNull(netns);
        ArgumentNullException.ThrowIfNull(value);
        string path = PathOf(segments);
        netns.Run(() =>
        {
            try
            {
                File.WriteAllText(path, value + "\n");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"sysctl -w {KeyOf(segments)}={value} in network namespace {netns.Name}: {e.Message}", e);
            }
        });
    }

    /// <summary>net.ipv4.ip_forward.</summary>
    public static bool GetIpForward(NetworkNamespace netns) => Read(netns, "net", "ipv4", "ip_forward") == "1";

    /// <summary>Equivalent to: <c>sysctl -w net.ipv4.ip_forward=0|1</c>.</summary>
    public static void SetIpForward(NetworkNamespace netns, bool on) => Write(netns, on ? "1" : "0", "net", "ipv4", "ip_forward");

    /// <summary>net.ipv4.conf.IF.proxy_arp.</summary>
    public static bool GetProxyArp(NetworkNamespace netns, string iface) => Read(netns, "net", "ipv4", "conf", iface, "proxy_arp") == "1";

    /// <summary>Equivalent to: <c>sysctl -w net.ipv4.conf.IF.proxy_arp=0|1</c>.</summary>
    public static void SetProxyArp(NetworkNamespace netns, string iface, bool on) => Write(netns, on ? "1" : "0", "net", "ipv4", "conf", iface, "proxy_arp");

    /// <summary>net.ipv4.conf.IF.rp_filter: 0 off, 1 strict, 2 loose.</summary>
    public static int GetRpFilter(NetworkNamespace netns, string iface) => int.Parse(Read(netns, "net", "ipv4", "conf", iface, "rp_filter"), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Equivalent to: <c>sysctl -w net.ipv4.conf.IF.rp_filter=N</c>.</summary>
    public static void SetRpFilter(NetworkNamespace netns, string iface, int mode)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(mode);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(mode, 2);
        Write(netns, mode.ToString(System.Globalization.CultureInfo.InvariantCulture), "net", "ipv4", "conf", iface, "rp_filter");
    }

    /// <summary>net.ipv4.conf.all.src_valid_mark.</summary>
    public static bool GetSrcValidMark(NetworkNamespace netns) => Read(netns, "net", "ipv4", "conf", "all", "src_valid_mark") == "1";

    /// <summary>Equivalent to: <c>sysctl -w net.ipv4.conf.all.src_valid_mark=0|1</c>.</summary>
    public static void SetSrcValidMark(NetworkNamespace netns, bool on) => Write(netns, on ? "1" : "0", "net", "ipv4", "conf", "all", "src_valid_mark");

    private static string KeyOf(string[] segments) => string.Join('.', segments);

    private static string PathOf(string[] segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        if (segments.Length < 2 || segments[0] != "net")
        {
            throw new ArgumentException($"sysctl key {KeyOf(segments)} is not under net.", nameof(segments));
        }

        foreach (string s in segments)
        {
            if (string.IsNullOrEmpty(s) || s is "." or ".." || s.Contains('/', StringComparison.Ordinal))
            {
                throw new ArgumentException($"invalid sysctl key segment '{s}' in {KeyOf(segments)}", nameof(segments));
            }
        }

        return "/proc/sys/" + string.Join('/', segments);
    }
}
