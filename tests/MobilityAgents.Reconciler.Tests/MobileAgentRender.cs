using System.Globalization;
using System.Net;
using System.Text.Json;
using MobilityAgents.Core;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// The mobile agent's kernel objects as text lines, read with the independent oracles
/// (<c>ip -j -d link</c>, <c>ip -j addr</c>, <c>ip -j rule</c>, <c>ip -j route show table all</c>,
/// <c>nft -j list ruleset</c>, <c>sysctl</c>), and the lines a desired state should produce,
/// written here from the recipe (not from the reconciler's code).
/// </summary>
internal static class MobileAgentRender
{
    public const string Table = "19777"; // Ownership.MobileTable, 0x4d41, as ip prints it

    /// <summary>Every marked object in the namespace, sorted.</summary>
    public static List<string> Marked(MobileAgentTestNamespace ns)
    {
        var lines = new List<string>();
        foreach (JsonElement l in ns.IpJson("-d", "link", "show").EnumerateArray())
        {
            if (Str(l, "ifalias") != MobileAgentState.TunnelAlias)
            {
                continue;
            }

            string name = Str(l, "ifname")!;
            bool up = l.GetProperty("flags").EnumerateArray().Any(f => f.GetString() == "UP");
            string kind = l.TryGetProperty("linkinfo", out JsonElement li) ? Str(li, "info_kind") ?? "?" : "?";
            string line = $"link {name} kind {kind} mtu {l.GetProperty("mtu").GetInt32()}{(up ? " up" : " down")} rp_filter {ns.Sh($"sysctl -n net.ipv4.conf.{name}.rp_filter").Stdout.Trim()}";
            if (kind == "ipip" && li.TryGetProperty("info_data", out JsonElement d))
            {
                line += $" local {Str(d, "local")} remote {Str(d, "remote")} ttl {Raw(d, "ttl")} pmtudisc {Raw(d, "pmtudisc")}";
            }

            lines.Add(line);
            foreach (JsonElement a in ns.IpJson("-4", "addr", "show", "dev", name).EnumerateArray().SelectMany(x => x.GetProperty("addr_info").EnumerateArray()))
            {
                lines.Add($"addr {Str(a, "local")}/{a.GetProperty("prefixlen").GetInt32()} dev {name}");
            }
        }

        foreach (JsonElement r in ns.IpJson("rule", "show").EnumerateArray().Where(IsOurRule))
        {
            lines.Add(Rule(r));
        }

        foreach (JsonElement r in ns.IpJson("route", "show", "table", "all").EnumerateArray().Where(r => Str(r, "protocol") == "77"))
        {
            lines.Add(Route(r));
        }

        lines.AddRange(Nft(ns, ours: true));
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    /// <summary>Every rule, route and nftables object that is not marked, and links without our alias, sorted: must survive anything the reconciler does.</summary>
    public static List<string> Unmarked(MobileAgentTestNamespace ns)
    {
        var lines = new List<string>();
        foreach (JsonElement l in ns.IpJson("link", "show").EnumerateArray().Where(l => Str(l, "ifalias") != MobileAgentState.TunnelAlias))
        {
            lines.Add($"link {Str(l, "ifname")}");
        }

        foreach (JsonElement r in ns.IpJson("rule", "show").EnumerateArray().Where(r => !IsOurRule(r)))
        {
            lines.Add(Rule(r));
        }

        foreach (JsonElement r in ns.IpJson("route", "show", "table", "all").EnumerateArray()
                     .Where(r => Str(r, "protocol") != "77" && Str(r, "table") != "local" && !(Str(r, "dst") ?? "").StartsWith("fe80", StringComparison.Ordinal)))
        {
            lines.Add(Route(r));
        }

        lines.AddRange(Nft(ns, ours: false));
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    /// <summary>
    /// What <paramref name="s"/> should look like. <paramref name="kind"/> is the tunnel's link kind
    /// ("ipip", or "veth" for the host tests' stand-in); <paramref name="gatewayDev"/> names the
    /// interface the kernel picks for the pin route's gateway.
    /// </summary>
    public static List<string> Expected(MobileAgentState? s, string kind, Func<IPAddress, string> gatewayDev)
    {
        var lines = new List<string>();
        if (s is null)
        {
            return lines;
        }

        string dev = s.TunnelName;
        string link = $"link {dev} kind {kind} mtu {s.TunnelMtu} up rp_filter 2";
        if (kind == "ipip")
        {
            link += $" local {s.CareOfAddress} remote {s.HomeAgentAddress} ttl 64 pmtudisc true";
        }

        lines.Add(link);
        lines.Add($"addr {s.HomeAddress}/32 dev {dev}");
        lines.Add($"rule 10000 from {s.HomeAddress} lookup {Table} proto 77");
        if (s.FwMarkSelection || !s.TcpPorts.IsEmpty)
        {
            lines.Add($"rule 10010 from all fwmark 0x100000/0x100000 lookup {Table} proto 77");
        }

        lines.Add($"route table {Table} default dev {dev}");
        if (s.HomePrefixThroughTunnel)
        {
            lines.Add($"route table main {s.HomeAgentAddress} via {s.VisitedGateway} dev {gatewayDev(s.VisitedGateway!)}");
            lines.Add($"route table main {s.HomePrefix} dev {dev} src {s.HomeAddress}");
        }

        if (s.FwMarkSelection || !s.TcpPorts.IsEmpty)
        {
            // Whatever the mark selects leaves with the home address as source.
            lines.Add("nft table ip mobilityagents");
            lines.Add("nft chain ip mobilityagents postrouting type nat hook postrouting prio 100 policy accept");
            lines.Add($"nft rule ip mobilityagents postrouting: meta oifname == \"{dev}\"; ip saddr != \"{s.HomeAddress}\"; snat to \"{s.HomeAddress}\"");
        }

        if (!s.TcpPorts.IsEmpty)
        {
            string ports = s.TcpPorts.Count == 1 ? s.TcpPorts.Min.ToString(CultureInfo.InvariantCulture) : "{" + string.Join(",", s.TcpPorts) + "}";
            lines.Add("nft chain ip mobilityagents output type route hook output prio -150 policy accept");
            lines.Add($"nft rule ip mobilityagents output: tcp dport == {ports}; meta mark set (meta mark | {Ownership.FwMarkBit})");
        }

        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    /// <summary>Ours: protocol 77 in the priority band 10000-10999 (Ownership).</summary>
    private static bool IsOurRule(JsonElement r) =>
        Str(r, "protocol") == "77" && r.GetProperty("priority").GetInt64() is >= 10_000 and <= 10_999;

    private static string Rule(JsonElement r)
    {
        string line = $"rule {r.GetProperty("priority").GetInt64()} from {Str(r, "src")}";
        if (Str(r, "srclen") is { } len)
        {
            line += "/" + len;
        }

        if (Str(r, "dst") is { } dst)
        {
            line += $" to {dst}";
        }

        if (Str(r, "fwmark") is { } mark)
        {
            line += $" fwmark {mark}/{Str(r, "fwmask")}";
        }

        line += $" lookup {Str(r, "table")}";
        if (Str(r, "protocol") is { } proto)
        {
            line += $" proto {proto}";
        }

        return line;
    }

    private static string Route(JsonElement r)
    {
        string line = $"route table {Str(r, "table") ?? "main"}";
        if (Str(r, "type") is { } type && type != "unicast")
        {
            line += " " + type;
        }

        line += " " + Str(r, "dst");
        if (Str(r, "gateway") is { } gw)
        {
            line += $" via {gw}";
        }

        if (Str(r, "dev") is { } dev)
        {
            line += $" dev {dev}";
        }

        if (Str(r, "prefsrc") is { } src)
        {
            line += $" src {src}";
        }

        return line;
    }

    /// <summary>nftables objects of our table (<paramref name="ours"/>) or of every other table, from <c>nft -j list ruleset</c>.</summary>
    private static List<string> Nft(MobileAgentTestNamespace ns, bool ours)
    {
        var lines = new List<string>();
        JsonElement root = ns.NftJson("list", "ruleset");
        foreach (JsonElement o in root.GetProperty("nftables").EnumerateArray())
        {
            if (o.TryGetProperty("metainfo", out _))
            {
                continue;
            }

            JsonProperty p = o.EnumerateObject().First();
            JsonElement v = p.Value;
            string family = Str(v, "family")!;
            string table = p.Name == "table" ? Str(v, "name")! : Str(v, "table")!;
            if ((family == "ip" && table == "mobilityagents") != ours)
            {
                continue;
            }

            lines.Add(p.Name switch
            {
                "table" => $"nft table {family} {table}",
                "chain" => $"nft chain {family} {table} {Str(v, "name")} type {Str(v, "type")} hook {Str(v, "hook")} prio {Raw(v, "prio")} policy {Str(v, "policy")}",
                "rule" => $"nft rule {family} {table} {Str(v, "chain")}: {string.Join("; ", v.GetProperty("expr").EnumerateArray().Select(Statement))}",
                _ => $"nft {p.Name} {family} {table} {v.GetRawText()}",
            });
        }

        return lines;
    }

    /// <summary>An nft JSON statement as text, for the few statement kinds our table uses (anything else verbatim).</summary>
    private static string Statement(JsonElement st)
    {
        JsonProperty p = st.EnumerateObject().First();
        JsonElement v = p.Value;
        return p.Name switch
        {
            "match" => $"{Expr(v.GetProperty("left"))} {Str(v, "op")} {Expr(v.GetProperty("right"))}",
            "mangle" => $"{Expr(v.GetProperty("key"))} set {Expr(v.GetProperty("value"))}",
            "snat" => $"snat to {Expr(v.GetProperty("addr"))}",
            _ => st.GetRawText(),
        };
    }

    private static string Expr(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Number:
                return e.GetRawText();
            case JsonValueKind.String:
                return $"\"{e.GetString()}\"";
            case JsonValueKind.Object:
                JsonProperty p = e.EnumerateObject().First();
                return p.Name switch
                {
                    "payload" => $"{Str(p.Value, "protocol")} {Str(p.Value, "field")}",
                    "meta" => $"meta {Str(p.Value, "key")}",
                    "set" => "{" + string.Join(",", p.Value.EnumerateArray().Select(Expr)) + "}",
                    "|" => $"({Expr(p.Value[0])} | {Expr(p.Value[1])})",
                    _ => e.GetRawText(),
                };
            default:
                return e.GetRawText();
        }
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out JsonElement v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText() : null;

    private static string Raw(JsonElement e, string name) => Str(e, name) ?? "";
}
