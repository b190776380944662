using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>
/// Building blocks for the ipip kernel tests: wiring namespaces together with veth pairs (through
/// the library), and the independent oracles — <c>ip -j</c> for state, <c>ping</c> for traffic.
/// The tests program every kernel object through the library; <c>ip</c> and <c>ping</c> only look.
/// </summary>
internal static class IpipLab
{
    /// <summary>rtm_protocol / FRA_PROTOCOL the tests mark their routes and rules with (as the product marks its own).</summary>
    public const byte Proto = 77;

    public static IPAddress Ip4(string s) => IPAddress.Parse(s);

    /// <summary>
    /// A veth pair from <paramref name="left"/> to <paramref name="right"/> (the peer created directly
    /// in the other namespace), each end addressed <c>ADDR/PREFIX</c> and up. Returns both indexes.
    /// </summary>
    public static (int Left, int Right) Wire(TestNamespace left, string leftName, string leftCidr, TestNamespace right, string rightName, string rightCidr)
    {
        left.Handle.Links.AddVeth(leftName, rightName, right.Namespace);
        int l = UpWithAddress(left, leftName, leftCidr);
        int r = UpWithAddress(right, rightName, rightCidr);
        return (l, r);
    }

    /// <summary>Adds <c>ADDR/PREFIX</c> to the link and brings it up. Equivalent to: <c>ip addr add ADDR/PREFIX dev NAME; ip link set NAME up</c>.</summary>
    public static int UpWithAddress(TestNamespace ns, string name, string cidr)
    {
        int index = ns.Handle.Links.IndexOf(name);
        string[] parts = cidr.Split('/');
        ns.Handle.Addresses.Add(new AddressEntry
        {
            InterfaceIndex = index,
            Local = Ip4(parts[0]),
            PrefixLength = byte.Parse(parts[1], CultureInfo.InvariantCulture),
        });
        ns.Handle.Links.SetUp(index);
        return index;
    }

    /// <summary>
    /// A classic ipip link with the recipe's point-to-point inner pair, up.
    /// Equivalent to: <c>ip link add NAME mtu 1480 type ipip local L remote R; ip addr add local INNER peer PEER dev NAME; ip link set NAME up</c>.
    /// </summary>
    public static int Tunnel(TestNamespace ns, string name, string local, string remote, string inner, string innerPeer)
    {
        ns.Handle.Links.AddIpip(name, new IpipParameters { Local = Ip4(local), Remote = Ip4(remote) }, mtu: 1480);
        int index = ns.Handle.Links.IndexOf(name);
        ns.Handle.Addresses.Add(new AddressEntry { InterfaceIndex = index, Local = Ip4(inner), Peer = Ip4(innerPeer), PrefixLength = 32 });
        ns.Handle.Links.SetUp(index);
        return index;
    }

    /// <summary>The one object of <c>ip -j -d link show dev NAME</c>.</summary>
    public static JsonElement LinkJson(TestNamespace ns, string name) =>
        Assert.Single(ns.IpJson("-d", "link", "show", "dev", name).EnumerateArray().ToList());

    /// <summary>linkinfo.info_data of <c>ip -j -d link show dev NAME</c>, after checking info_kind is ipip.</summary>
    public static JsonElement IpipInfoData(TestNamespace ns, string name)
    {
        JsonElement info = LinkJson(ns, name).GetProperty("linkinfo");
        Assert.Equal("ipip", info.GetProperty("info_kind").GetString());
        return info.GetProperty("info_data");
    }

    /// <summary>Names of every link in the namespace, from <c>ip -j link show</c>.</summary>
    public static List<string> LinkNames(TestNamespace ns) =>
        [.. ns.IpJson("link", "show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString() ?? "")];

    /// <summary>stats64.rx.packets of <c>ip -j -s link show dev NAME</c>.</summary>
    public static long RxPackets(TestNamespace ns, string name) =>
        Assert.Single(ns.IpJson("-s", "link", "show", "dev", name).EnumerateArray().ToList())
            .GetProperty("stats64").GetProperty("rx").GetProperty("packets").GetInt64();

    /// <summary>
    /// Every value of one key in a JSON object, in order. <c>ip -j route</c> repeats "dst" (the route's
    /// destination, then the encap destination), and a dictionary view would keep only one of them.
    /// </summary>
    public static List<string> All(JsonElement obj, string key) =>
        [.. obj.EnumerateObject().Where(p => p.Name == key).Select(p => p.Value.ToString())];

    /// <summary>
    /// One ICMP echo from inside <paramref name="ns"/>, optionally from a given source address; one retry
    /// (the first echo of a fresh path can be lost while ARP resolves under emulation).
    /// Equivalent to: <c>ip netns exec NS ping -c 1 -W 5 [-I SRC] DST</c>.
    /// </summary>
    public static (bool Ok, string Output) Ping(TestNamespace ns, IPAddress destination, IPAddress? source = null)
    {
        var args = new List<string> { "netns", "exec", ns.Name };
        args.AddRange(PingCommand.Value);
        args.AddRange(["-c", "1", "-W", "5"]);
        if (source is not null)
        {
            args.AddRange(["-I", source.ToString()]);
        }

        args.Add(destination.ToString());
        var log = new StringBuilder();
        for (int attempt = 1; attempt <= 2; attempt++)
        {
            (int rc, string stdout, string stderr) = Ip.Exec([.. args]);
            log.Append(CultureInfo.InvariantCulture, $"[ping attempt {attempt}, rc {rc}] {stdout.Trim()} {stderr.Trim()}\n");
            if (rc == 0)
            {
                return (true, log.ToString());
            }
        }

        return (false, log.ToString());
    }

    /// <summary>Pings and fails the test with the ping output and a dump of the namespaces if there was no answer.</summary>
    public static void AssertPings(string what, TestNamespace from, IPAddress destination, IPAddress? source, params (string Role, TestNamespace Ns)[] context)
    {
        (bool ok, string output) = Ping(from, destination, source);
        if (!ok)
        {
            Assert.Fail($"{what}: no answer\n{output}\n{Describe(context)}");
        }
    }

    /// <summary>The <c>ip</c> view of some namespaces, for failure messages.</summary>
    public static string Describe(params (string Role, TestNamespace Ns)[] namespaces)
    {
        var s = new StringBuilder();
        foreach ((string role, TestNamespace ns) in namespaces)
        {
            s.Append(CultureInfo.InvariantCulture, $"--- {role} ({ns.Name})\n");
            foreach (string[] cmd in new[] { new[] { "-d", "-s", "link", "show" }, ["addr", "show"], ["route", "show", "table", "all"], ["rule", "show"], ["neigh", "show"] })
            {
                (int _, string stdout, string stderr) = Ip.Exec(["-n", ns.Name, .. cmd]);
                s.Append(CultureInfo.InvariantCulture, $"$ ip {string.Join(' ', cmd)}\n{stdout}{stderr}");
            }
        }

        return s.ToString();
    }

    /// <summary>
    /// iputils <c>ping</c> if the PATH has it, else <c>busybox ping</c> (the kernel VM shares a host
    /// whose only ping is busybox's). Both take <c>-c -W -I</c> the same way.
    /// </summary>
    private static readonly Lazy<string[]> PingCommand = new(() =>
    {
        string[] path = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':');
        bool Has(string exe) => path.Any(d => d.Length > 0 && File.Exists(Path.Combine(d, exe)));
        return Has("ping") ? ["ping"] : Has("busybox") ? ["busybox", "ping"] : throw new InvalidOperationException("neither ping nor busybox is on the PATH: the ipip traffic tests need one");
    });
}
