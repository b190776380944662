using System.Globalization;
using System.Net;
using System.Text.Json;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink.Tests;

/// <summary>IPv4 policy rules (<c>ip rule</c>), read back with <c>ip -j -N rule show</c> (numeric tables and protocols).</summary>
public class RuleTests
{
    private const byte Proto = 77;

    // -d: ip then prints the protocol of every rule (it hides kernel and unspec otherwise).
    private static List<JsonElement> IpRules(TestNamespace ns) => [.. ns.IpJson("-N", "-d", "rule", "show").EnumerateArray()];

    private static JsonElement IpRule(TestNamespace ns, uint priority) =>
        Assert.Single(IpRules(ns), r => r.GetProperty("priority").GetUInt32() == priority);

    /// <summary>A rule in a canonical form, from ip's JSON.</summary>
    private static string Canon(JsonElement r)
    {
        string src = r.Str("src") is "all" or null ? "all" : $"{r.Str("src")}/{r.Str("srclen") ?? "32"}";
        string dst = r.Str("dst") is null ? "all" : $"{r.Str("dst")}/{r.Str("dstlen") ?? "32"}";
        string mark = r.Str("fwmark") is { } m ? $"{Convert.ToUInt32(m, 16)}/{(r.Str("fwmask") is { } k ? Convert.ToUInt32(k, 16) : uint.MaxValue)}" : "-";
        return $"{r.Str("priority")}: from {src} to {dst} fwmark {mark} iif {r.Str("iif") ?? "-"} oif {r.Str("oif") ?? "-"} " +
            $"lookup {r.Str("table")} proto {r.Str("protocol")}";
    }

    /// <summary>The same canonical form from our decoded rule.</summary>
    private static string Canon(RuleEntry r)
    {
        string src = r.Source is null ? "all" : $"{r.Source}/{r.SourcePrefixLength}";
        string dst = r.Destination is null ? "all" : $"{r.Destination}/{r.DestinationPrefixLength}";
        string mark = r.FwMark is { } m ? $"{m}/{r.FwMask ?? uint.MaxValue}" : "-";
        return $"{r.Priority}: from {src} to {dst} fwmark {mark} iif {r.InputInterface ?? "-"} oif {r.OutputInterface ?? "-"} " +
            $"lookup {r.Table} proto {r.Protocol ?? 0}";
    }

    private static void AssertListAgrees(TestNamespace ns) =>
        Assert.Equal(
            IpRules(ns).Select(Canon).Order(StringComparer.Ordinal),
            ns.Handle.Rules.List().Select(Canon).Order(StringComparer.Ordinal));

    [Theory]
    [InlineData(100u)]
    [InlineData(1000u)] // >= 256: FRA_TABLE only
    public void Rule_with_every_selector_add_duplicate_add_delete_duplicate_delete(uint table)
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        h.Links.AddVeth("ru0", "ru0p");
        var rule = new RuleEntry
        {
            Source = IPAddress.Parse("192.0.2.0"),
            SourcePrefixLength = 24,
            Destination = IPAddress.Parse("198.51.100.0"),
            DestinationPrefixLength = 24,
            FwMark = 0x10,
            FwMask = 0xff,
            InputInterface = "ru0",
            OutputInterface = "ru0p",
            Table = table,
            Priority = 500,
            Protocol = Proto,
        };

        h.Rules.Add(rule);

        JsonElement ip = IpRule(ns, 500);
        Assert.Equal("192.0.2.0", ip.Str("src"));
        Assert.Equal("24", ip.Str("srclen"));
        Assert.Equal("198.51.100.0", ip.Str("dst"));
        Assert.Equal("24", ip.Str("dstlen"));
        Assert.Equal("0x10", ip.Str("fwmark"));
        Assert.Equal("0xff", ip.Str("fwmask"));
        Assert.Equal("ru0", ip.Str("iif"));
        Assert.Equal("ru0p", ip.Str("oif"));
        Assert.Equal(table.ToString(CultureInfo.InvariantCulture), ip.Str("table"));
        Assert.Equal("77", ip.Str("protocol"));
        RuleEntry ours = Assert.Single(h.Rules.List(), r => r.Priority == 500);
        Assert.Equal(rule.Source, ours.Source);
        Assert.Equal(24, ours.SourcePrefixLength);
        Assert.Equal(rule.Destination, ours.Destination);
        Assert.Equal(24, ours.DestinationPrefixLength);
        Assert.Equal(0x10u, ours.FwMark);
        Assert.Equal(0xffu, ours.FwMask);
        Assert.Equal("ru0", ours.InputInterface);
        Assert.Equal("ru0p", ours.OutputInterface);
        Assert.Equal(table, ours.Table);
        Assert.Equal(Proto, ours.Protocol);
        Assert.Equal(FR_ACT_TO_TBL, ours.Action);
        AssertListAgrees(ns);

        NetlinkException e = Assert.Throws<NetlinkException>(() => h.Rules.Add(rule));
        Assert.True(e.IsExists);
        Assert.Equal("EEXIST", e.ErrnoName);
        Assert.Equal($"ip rule add from 192.0.2.0/24 to 198.51.100.0/24 fwmark 0x10/0xff iif ru0 oif ru0p lookup {table} priority 500 protocol 77", e.Operation);
        Assert.Contains(e.Operation, e.Message, StringComparison.Ordinal);
        Assert.Contains("EEXIST", e.Message, StringComparison.Ordinal);
        Assert.Single(IpRules(ns), r => r.GetProperty("priority").GetUInt32() == 500);

        Assert.True(h.Rules.Delete(rule));
        Assert.DoesNotContain(IpRules(ns), r => r.GetProperty("priority").GetUInt32() == 500);
        Assert.DoesNotContain(h.Rules.List(), r => r.Priority == 500);
        AssertListAgrees(ns);

        Assert.False(h.Rules.Delete(rule));
    }

    [Fact]
    public void Simple_selectors_each_land_as_ip_shows_them()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        RuleEntry[] rules =
        [
            new() { Source = IPAddress.Parse("203.0.113.7"), SourcePrefixLength = 32, Table = 100, Priority = 1000, Protocol = Proto },
            new() { Destination = IPAddress.Parse("198.51.100.0"), DestinationPrefixLength = 25, Table = 101, Priority = 1001, Protocol = Proto },
            new() { FwMark = 0x1, Table = 102, Priority = 1002, Protocol = Proto }, // no mask: the kernel takes all bits
            new() { FwMark = 0x100, FwMask = 0xff00, Table = 1234, Priority = 1003, Protocol = Proto },
            new() { InputInterface = "lo", Table = 103, Priority = 1004, Protocol = Proto },
            new() { OutputInterface = "notyet0", Table = 104, Priority = 1005, Protocol = Proto }, // rules match names; the link need not exist
        ];

        foreach (RuleEntry r in rules)
        {
            h.Rules.Add(r);
        }

        Assert.Equal("203.0.113.7", IpRule(ns, 1000).Str("src"));
        Assert.Null(IpRule(ns, 1000).Str("srclen")); // a /32 is shown without a length
        Assert.Equal("198.51.100.0", IpRule(ns, 1001).Str("dst"));
        Assert.Equal("25", IpRule(ns, 1001).Str("dstlen"));
        Assert.Equal("0x1", IpRule(ns, 1002).Str("fwmark"));
        Assert.Null(IpRule(ns, 1002).Str("fwmask"));
        Assert.Equal("0x100", IpRule(ns, 1003).Str("fwmark"));
        Assert.Equal("0xff00", IpRule(ns, 1003).Str("fwmask"));
        Assert.Equal("1234", IpRule(ns, 1003).Str("table"));
        Assert.Equal("lo", IpRule(ns, 1004).Str("iif"));
        Assert.Equal("notyet0", IpRule(ns, 1005).Str("oif"));
        Assert.All(rules, r => Assert.Equal("77", IpRule(ns, r.Priority!.Value).Str("protocol")));
        Assert.Equal(0xffffffffu, Assert.Single(h.Rules.List(), r => r.Priority == 1002).FwMask);
        AssertListAgrees(ns);

        foreach (RuleEntry r in rules)
        {
            Assert.True(h.Rules.Delete(r));
        }

        // Back to the three rules every namespace starts with.
        Assert.Equal(["0: from all to all fwmark - iif - oif - lookup 255 proto 2", "32766: from all to all fwmark - iif - oif - lookup 254 proto 2", "32767: from all to all fwmark - iif - oif - lookup 253 proto 2"],
            h.Rules.List().Select(Canon).Order(StringComparer.Ordinal));
        AssertListAgrees(ns);
    }

    [Fact]
    public void Without_a_priority_the_kernel_picks_one_and_List_reports_it()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.99"), SourcePrefixLength = 32, Table = 100, Protocol = Proto };

        h.Rules.Add(rule);

        JsonElement ip = Assert.Single(IpRules(ns), r => r.Str("src") == "192.0.2.99");
        RuleEntry ours = Assert.Single(h.Rules.List(), r => r.Source?.Equals(IPAddress.Parse("192.0.2.99")) == true);
        Assert.NotNull(ours.Priority);
        Assert.Equal(ip.GetProperty("priority").GetUInt32(), ours.Priority);
        Assert.True(ours.Priority < 32766); // just before the main table's rule
        AssertListAgrees(ns);

        // A delete without priority matches it too.
        Assert.True(h.Rules.Delete(rule));
        Assert.DoesNotContain(IpRules(ns), r => r.Str("src") == "192.0.2.99");
    }

    [Fact]
    public void Delete_matches_selectors_so_a_rule_with_other_table_is_not_deleted()
    {
        using var ns = new TestNamespace();
        RouteNetlink h = ns.Handle;
        var rule = new RuleEntry { Source = IPAddress.Parse("192.0.2.10"), SourcePrefixLength = 32, Table = 100, Priority = 700, Protocol = Proto };
        h.Rules.Add(rule);

        Assert.False(h.Rules.Delete(rule with { Table = 101 }));
        Assert.False(h.Rules.Delete(rule with { Priority = 701 }));

        Assert.Equal("100", IpRule(ns, 700).Str("table"));
        Assert.True(h.Rules.Delete(rule));
        Assert.DoesNotContain(IpRules(ns), r => r.GetProperty("priority").GetUInt32() == 700);
    }
}
