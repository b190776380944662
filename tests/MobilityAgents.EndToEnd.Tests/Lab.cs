using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MobilityAgents.EndToEnd.Tests;

/// <summary>
/// The end-to-end topology, six network namespaces made by the test (names "ma-t-e2e-XXXXXX-*",
/// so the CI sweep of "ma-t-" catches any a crash left) and removed on dispose:
/// <code>
///  lan  eth0 192.0.2.100/24 ---- lan0 192.0.2.1/24  gw  (home agent; ip_forward is its to turn on)
///                                out0 bridge 203.0.113.1/24 (the outer address)
///                                  |- gw-v1 ---- up0 203.0.113.2/24  v1  (router, forwarding)
///                                  |                br0 198.51.100.1/24
///                                  |                  |- v1-lap  ---- e1 198.51.100.10/24  lap  (alice)
///                                  |                  |- v1-lap2 ---- e0 198.51.100.20/24  lap2 (bob)
///                                  |- gw-v2 ---- up0 203.0.113.3/24  v2  (router, forwarding)
///                                                   v2-lap 10.99.0.1/24 ---- e2 (down) lap
///  gw routes 198.51.100.0/24 via 203.0.113.2 and 10.99.0.0/24 via 203.0.113.3.
/// </code>
/// The laptop moves by losing e1 (address deleted, link down) and gaining e2 (up, 10.99.0.10/24,
/// default via 10.99.0.1): its care-of address and default route change. Every kernel change and
/// every snapshot is one bash process (iproute2 batches inside). The root namespace is never
/// touched: links are created inside the namespaces (<c>ip -n NS link add ... peer ... netns OTHER</c>).
/// </summary>
public sealed class Lab : IAsyncDisposable
{
    public const string Prefix = "ma-t-e2e-";
    public const string OuterAddress = "203.0.113.1";
    public const string HomePrefix = "192.0.2.0/24";
    public const string LanHost = "192.0.2.100";
    public const string AliceHome = "192.0.2.77";
    public const string BobHome = "192.0.2.78";
    public const string AliceCareOf1 = "198.51.100.10";
    public const string AliceCareOf2 = "10.99.0.10";
    public const string BobCareOf = "198.51.100.20";

    /// <summary>Every namespace's short role name.</summary>
    public static readonly string[] Roles = ["lan", "gw", "v1", "v2", "lap", "lap2"];

    private Lab(string tag) => Tag = tag;

    /// <summary>"ma-t-e2e-XXXXXX": the namespaces are TAG-lan, TAG-gw, ...</summary>
    public string Tag { get; }

    public string Ns(string role) => Tag + "-" + role;

    public static async Task<Lab> CreateAsync()
    {
        var lab = new Lab(Prefix + Guid.NewGuid().ToString("N")[..6]);
        try
        {
            await Shell.RunAsync(lab.SetupScript());
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }

        return lab;
    }

    private string SetupScript() => $$"""
        P={{Tag}}
        for n in {{string.Join(' ', Roles)}}; do ip netns add $P-$n; done
        ip -n $P-gw link add lan0 type veth peer name eth0 netns $P-lan
        ip -n $P-gw link add out0 type bridge
        ip -n $P-gw link add gw-v1 type veth peer name up0 netns $P-v1
        ip -n $P-gw link add gw-v2 type veth peer name up0 netns $P-v2
        ip -n $P-v1 link add br0 type bridge
        ip -n $P-v1 link add v1-lap type veth peer name e1 netns $P-lap
        ip -n $P-v1 link add v1-lap2 type veth peer name e0 netns $P-lap2
        ip -n $P-v2 link add v2-lap type veth peer name e2 netns $P-lap
        ip -n $P-lan -batch - <<EOF
        link set lo up
        addr add {{LanHost}}/24 dev eth0
        link set eth0 up
        route add default via 192.0.2.1
        EOF
        ip -n $P-gw -batch - <<EOF
        link set lo up
        addr add 192.0.2.1/24 dev lan0
        link set lan0 up
        link set gw-v1 master out0
        link set gw-v2 master out0
        addr add {{OuterAddress}}/24 dev out0
        link set out0 up
        link set gw-v1 up
        link set gw-v2 up
        route add 198.51.100.0/24 via 203.0.113.2
        route add 10.99.0.0/24 via 203.0.113.3
        EOF
        ip -n $P-v1 -batch - <<EOF
        link set lo up
        addr add 203.0.113.2/24 dev up0
        link set up0 up
        link set v1-lap master br0
        link set v1-lap2 master br0
        addr add 198.51.100.1/24 dev br0
        link set br0 up
        link set v1-lap up
        link set v1-lap2 up
        EOF
        ip -n $P-v2 -batch - <<EOF
        link set lo up
        addr add 203.0.113.3/24 dev up0
        link set up0 up
        addr add 10.99.0.1/24 dev v2-lap
        link set v2-lap up
        EOF
        ip -n $P-lap -batch - <<EOF
        link set lo up
        addr add {{AliceCareOf1}}/24 dev e1
        link set e1 up
        route add default via 198.51.100.1
        EOF
        ip -n $P-lap2 -batch - <<EOF
        link set lo up
        addr add {{BobCareOf}}/24 dev e0
        link set e0 up
        route add default via 198.51.100.1
        EOF
        ip netns exec $P-v1 sysctl -qw net.ipv4.ip_forward=1
        ip netns exec $P-v2 sysctl -qw net.ipv4.ip_forward=1
        # The visited networks reach the gateway's outer address (bridges forwarding, routers routing).
        ip netns exec $P-lap ping -q -c 1 -W 10 {{OuterAddress}} >/dev/null
        ip netns exec $P-lap2 ping -q -c 1 -W 10 {{OuterAddress}} >/dev/null
        """;

    /// <summary>
    /// The laptop moves in one batch, to v2 (<paramref name="toV2"/>) or back to v1: the old
    /// address is deleted and its link goes down, the other link comes up with its address and the
    /// default route through that network's router. Returns the wall-clock (CLOCK_REALTIME, as
    /// ping -D prints it) just before and just after the change.
    /// </summary>
    public async Task<(double Before, double After)> MoveLaptopAsync(bool toV2)
    {
        (string oldDev, string oldAddress, string newDev, string newAddress, string router) = toV2
            ? ("e1", AliceCareOf1, "e2", AliceCareOf2, "10.99.0.1")
            : ("e2", AliceCareOf2, "e1", AliceCareOf1, "198.51.100.1");
        string output = await Shell.RunAsync($"""
            t0=$(date +%s.%N)
            ip -n {Ns("lap")} -batch - <<EOF
            addr del {oldAddress}/24 dev {oldDev}
            link set {oldDev} down
            link set {newDev} up
            addr add {newAddress}/24 dev {newDev}
            route add default via {router}
            EOF
            t1=$(date +%s.%N)
            echo "$t0 $t1"
            """);
        string[] t = output.Trim().Split(' ');
        return (double.Parse(t[0], CultureInfo.InvariantCulture), double.Parse(t[1], CultureInfo.InvariantCulture));
    }

    /// <summary>The second laptop vanishes: its only link goes down (no deregistration can get out). Returns the time.</summary>
    public async Task<double> CutSecondLaptopAsync()
    {
        string output = await Shell.RunAsync($"""
            ip -n {Ns("lap2")} link set e0 down
            date +%s.%N
            """);
        return double.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// One bash process, one <c>ip -j -d -batch</c> per namespace: links, protocol-77 routes of every
    /// table, rules, proxy entries and addresses of <paramref name="roles"/> (all when none given),
    /// and the gateway's ip_forward.
    /// </summary>
    public async Task<Snapshot> SnapshotAsync(params string[] roles)
    {
        if (roles.Length == 0)
        {
            roles = Roles;
        }

        var script = new StringBuilder();
        foreach (string r in roles)
        {
            script.AppendLine(CultureInfo.InvariantCulture, $"echo '@@ {r}'; printf '{string.Join("\\n", Snapshot.Commands)}\\n' | ip -n {Ns(r)} -j -d -batch -");
            if (r == "gw")
            {
                script.AppendLine(CultureInfo.InvariantCulture, $"echo '@@ gw forward'; echo \"[$(ip netns exec {Ns(r)} cat /proc/sys/net/ipv4/ip_forward)]\"");
            }
        }

        return Snapshot.Parse(await Shell.RunAsync(script.ToString()));
    }

    /// <summary>Kills anything still running in the namespaces (by pid: only this test's processes live there), then deletes them.</summary>
    public async ValueTask DisposeAsync()
    {
        await Shell.RunAsync($$"""
            for n in {{string.Join(' ', Roles)}}; do
              [ -e /run/netns/{{Tag}}-$n ] || continue
              for pid in $(ip netns pids {{Tag}}-$n 2>/dev/null); do kill -9 $pid 2>/dev/null || true; done
              ip netns del {{Tag}}-$n || true
            done
            """, check: false);
    }
}

/// <summary>What <c>ip -j</c> said about some namespaces, section by section.</summary>
public sealed class Snapshot
{
    private readonly Dictionary<(string Role, string Kind), JsonElement> _sections = [];

    private Snapshot(string text) => Text = text;

    /// <summary>The raw output, for failure reports.</summary>
    public string Text { get; }

    /// <summary>What each namespace's <c>ip -batch</c> runs, and the section each answer goes to.</summary>
    public static readonly string[] Commands = ["link show", "route show table all proto 77", "rule show", "neigh show proxy", "addr show"];

    private static readonly string[] Kinds = ["links", "routes77", "rules", "proxies", "addrs"];

    /// <summary>Sections "@@ ROLE" (followed by one JSON array per <see cref="Commands"/>) and "@@ ROLE KIND" (one JSON value).</summary>
    public static Snapshot Parse(string output)
    {
        var s = new Snapshot(output);
        string? header = null;
        var body = new StringBuilder();
        void Flush()
        {
            if (header is not null)
            {
                string[] h = header.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                List<JsonElement> values = JsonValues(body.ToString());
                string[] kinds = h.Length > 1 ? [h[1]] : Kinds;
                for (int i = 0; i < kinds.Length; i++)
                {
                    s._sections[(h[0], kinds[i])] = i < values.Count ? values[i] : JsonDocument.Parse("[]").RootElement.Clone();
                }
            }

            body.Clear();
        }

        foreach (string line in output.Split('\n'))
        {
            if (line.StartsWith("@@ ", StringComparison.Ordinal))
            {
                Flush();
                header = line[3..].Trim();
            }
            else
            {
                body.AppendLine(line);
            }
        }

        Flush();
        return s;
    }

    /// <summary>Every JSON value in <paramref name="text"/> (ip -batch prints one per command).</summary>
    private static List<JsonElement> JsonValues(string text)
    {
        var values = new List<JsonElement>();
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { AllowMultipleValues = true });
        while (reader.Read())
        {
            values.Add(JsonElement.ParseValue(ref reader)); // leaves the reader on the value's last token
        }

        return values;
    }

    /// <summary>A compact account of every namespace in the snapshot, for failure reports.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        foreach (string role in _sections.Keys.Select(k => k.Role).Distinct())
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"[{role}]{(role == "gw" ? " ip_forward=" + (Forwarding(role) ? 1 : 0) : "")}");
            foreach (JsonElement l in Items(role, "links"))
            {
                string? kind = Str(l, "linkinfo", "info_kind");
                string ipip = kind == "ipip" ? $" ipip {Str(l, "linkinfo", "info_data", "local")} -> {Str(l, "linkinfo", "info_data", "remote")}" : "";
                string master = Str(l, "master") is { } m ? " master " + m : "";
                string alias = Str(l, "ifalias") is { } a ? $" alias \"{a}\"" : "";
                sb.AppendLine(CultureInfo.InvariantCulture, $"  link {Num(l, "ifindex")}: {Str(l, "ifname")} {kind ?? Str(l, "link_type")} {Str(l, "operstate")}{ipip}{master}{alias}");
            }

            foreach (string a in Addresses(role))
            {
                sb.AppendLine("  addr " + a);
            }

            foreach (string r in Routes77(role))
            {
                sb.AppendLine("  route " + r + " proto 77");
            }

            foreach (JsonElement r in Items(role, "rules").Where(r => Str(r, "protocol") != "kernel"))
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"  rule {r.GetRawText()}");
            }

            foreach (string p in Proxies(role))
            {
                sb.AppendLine("  proxy " + p);
            }
        }

        return sb.ToString();
    }

    public IEnumerable<JsonElement> Items(string role, string kind) =>
        _sections.TryGetValue((role, kind), out JsonElement e) && e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : [];

    public bool Forwarding(string role) => _sections.TryGetValue((role, "forward"), out JsonElement f) && f.ValueKind == JsonValueKind.Array && f.EnumerateArray().Any(e => e.GetInt32() == 1);

    /// <summary>The home agent's tunnels in <paramref name="role"/>: ipip links with a "mobilityagents:" alias.</summary>
    public IReadOnlyList<Tunnel> Tunnels(string role) =>
        [.. Items(role, "links").Where(IsMarkedLink).Where(l => Str(l, "linkinfo", "info_kind") == "ipip").Select(l => new Tunnel(
            Str(l, "ifname")!, l.GetProperty("ifindex").GetInt32(), Str(l, "ifalias")!, Str(l, "linkinfo", "info_data", "local"),
            Str(l, "linkinfo", "info_data", "remote"), (Str(l, "operstate") ?? "") + " " + string.Join(',', l.TryGetProperty("flags", out JsonElement f) ? f.EnumerateArray().Select(x => x.GetString()) : []),
            l.TryGetProperty("mtu", out JsonElement mtu) ? mtu.GetInt32() : 0))];

    /// <summary>Destinations of the protocol-77 routes in <paramref name="role"/> ("192.0.2.77 dev maXXXX").</summary>
    public IReadOnlyList<string> Routes77(string role) =>
        [.. Items(role, "routes77").Select(r => $"{Str(r, "dst")} dev {Str(r, "dev")}{(Str(r, "table") is { } t && t != "main" ? " table " + t : "")}")];

    /// <summary>Proxy entries in <paramref name="role"/> ("192.0.2.77 dev lan0 protocol 77").</summary>
    public IReadOnlyList<string> Proxies(string role) =>
        [.. Items(role, "proxies").Select(p => $"{Str(p, "dst")} dev {Str(p, "dev")} protocol {Str(p, "protocol") ?? "-"}")];

    /// <summary>Local IPv4 addresses in <paramref name="role"/> ("192.0.2.77 dev ma-tun0").</summary>
    public IReadOnlyList<string> Addresses(string role) =>
        [.. Items(role, "addrs").SelectMany(l => (l.TryGetProperty("addr_info", out JsonElement a) ? a.EnumerateArray() : Enumerable.Empty<JsonElement>())
            .Where(x => Str(x, "family") == "inet").Select(x => $"{Str(x, "local")} dev {Str(l, "ifname")}"))];

    /// <summary>
    /// Every object in <paramref name="role"/> that carries one of the agents' markers: links with a
    /// "mobilityagents:" alias or named "ma*", routes with protocol 77 (any table), rules with
    /// protocol 77, proxy entries with protocol 77, and the home addresses.
    /// </summary>
    public IReadOnlyList<string> Marked(string role)
    {
        var found = new List<string>();
        found.AddRange(Items(role, "links").Where(l => IsMarkedLink(l) || (Str(l, "ifname") ?? "").StartsWith("ma", StringComparison.Ordinal))
            .Select(l => $"link {Str(l, "ifname")} alias {Str(l, "ifalias") ?? "-"}"));
        found.AddRange(Routes77(role).Select(r => "route " + r + " proto 77"));
        found.AddRange(Items(role, "rules").Where(r => Str(r, "protocol") == "77").Select(r => $"rule priority {Num(r, "priority")} from {Str(r, "src")} table {Str(r, "table")} proto 77"));
        found.AddRange(Items(role, "proxies").Where(p => Str(p, "protocol") == "77").Select(p => $"proxy {Str(p, "dst")} dev {Str(p, "dev")} protocol 77"));
        found.AddRange(Addresses(role).Where(a => a.StartsWith(Lab.AliceHome + " ", StringComparison.Ordinal) || a.StartsWith(Lab.BobHome + " ", StringComparison.Ordinal)).Select(a => "address " + a));
        return found;
    }

    private static bool IsMarkedLink(JsonElement l) => (Str(l, "ifalias") ?? "").StartsWith("mobilityagents:", StringComparison.Ordinal);

    private static string? Str(JsonElement e, params string[] path)
    {
        foreach (string p in path)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(p, out e))
            {
                return null;
            }
        }

        return e.ValueKind switch
        {
            JsonValueKind.String => e.GetString(),
            JsonValueKind.Number => e.GetRawText(),
            _ => null,
        };
    }

    private static string Num(JsonElement e, string name) => e.TryGetProperty(name, out JsonElement v) ? v.GetRawText() : "-";
}

/// <summary>A home agent tunnel as <c>ip -j -d link show</c> reports it.</summary>
public sealed record Tunnel(string Name, int Index, string Alias, string? Local, string? Remote, string State, int Mtu)
{
    public bool Points(string remote) => Remote == remote && Local == Lab.OuterAddress;

    public override string ToString() => $"{Name} (ifindex {Index}, {Alias}) ipip {Local} -> {Remote}, mtu {Mtu}, {State}";
}

/// <summary>One ping reply: <c>[TIME] 64 bytes from ADDRESS: icmp_seq=N ...</c> (ping -D).</summary>
public readonly record struct PingReply(double Time, string From, int Sequence)
{
    public static IReadOnlyList<PingReply> Parse(IEnumerable<string> lines)
    {
        var replies = new List<PingReply>();
        foreach (string line in lines)
        {
            // [1795574128.462139] 64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=12.6 ms
            if (!line.StartsWith('[') || !line.Contains(" bytes from ", StringComparison.Ordinal))
            {
                continue;
            }

            int close = line.IndexOf(']', StringComparison.Ordinal);
            int from = line.IndexOf(" from ", StringComparison.Ordinal) + 6;
            int colon = line.IndexOf(':', from);
            int seq = line.IndexOf("icmp_seq=", StringComparison.Ordinal) + 9;
            int seqEnd = line.IndexOf(' ', seq);
            if (close < 0 || colon < 0 || seq < 9)
            {
                continue;
            }

            replies.Add(new PingReply(
                double.Parse(line[1..close], CultureInfo.InvariantCulture),
                line[from..colon],
                int.Parse(seqEnd < 0 ? line[seq..] : line[seq..seqEnd], CultureInfo.InvariantCulture)));
        }

        return replies;
    }
}
