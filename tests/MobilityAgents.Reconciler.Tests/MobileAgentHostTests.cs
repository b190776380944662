using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// The mobile agent's reconciler against this host's kernel, in fresh namespaces, with a veth
/// standing in for the ipip link (this host has no ipip module): address, rules, routes, nftables
/// and real traffic; <c>ip -j</c> and <c>nft -j</c> are the oracles.
/// </summary>
public sealed class MobileAgentHostTests
{
    [Fact]
    public void Apply_BuildsTheRecipe_AndASecondApplyChangesNothing()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentState s = MobileAgentHostLab.State() with
        {
            HomePrefixThroughTunnel = true,
            FwMarkSelection = true,
            TcpPorts = MobileAgentHostLab.Ports(25, 587),
        };
        MobileAgentReached r = lab.ApplyExactly(s);
        Assert.Equal(lab.Laptop.Handle.Links.IndexOf("ma-tun0"), r.TunnelIndex);
        // The address carries the marker too (IFA_PROTO, kernel 5.18+; iproute2 6.1 does not print it).
        Assert.Equal((byte)77, Assert.Single(lab.Laptop.Handle.Addresses.List(r.TunnelIndex)).Protocol);

        // Every mutation was logged as its ip/nft/sysctl equivalent, before it was made, in the recipe's order.
        List<string> m = lab.Logger.Mutations;
        Assert.StartsWith("ip link add ma-tun0 mtu 1480 type veth", m[0], StringComparison.Ordinal);
        Assert.Equal(
        [
            "sysctl -w net.ipv4.conf.ma-tun0.rp_filter=2",
            "ip link set dev ma-tun0 up",
            "ip addr add 172.110.4.180/32 dev ma-tun0 proto 77",
            "ip route replace default dev ma-tun0 table 19777 proto 77",
            "ip route replace 172.110.4.238/32 via 10.1.0.1 proto 77",
            "ip route replace 172.110.4.0/24 dev ma-tun0 src 172.110.4.180 proto 77",
            "ip rule add from 172.110.4.180 lookup 19777 priority 10000 protocol 77",
            "ip rule add from all fwmark 0x100000/0x100000 lookup 19777 priority 10010 protocol 77",
        ], m.Skip(1).Take(8));
        Assert.StartsWith("nft 'add table ip mobilityagents; delete table ip mobilityagents; table ip mobilityagents {", m[9], StringComparison.Ordinal);
        Assert.Equal(10, m.Count);

        // The kernel routes as the recipe says (ip route get as the oracle).
        JsonElement toHomeLan = lab.Laptop.IpJson("route", "get", "172.110.4.50")[0];
        Assert.Equal("ma-tun0", toHomeLan.GetProperty("dev").GetString());
        Assert.Equal("172.110.4.180", toHomeLan.GetProperty("prefsrc").GetString());
        JsonElement toHomeAgent = lab.Laptop.IpJson("route", "get", "172.110.4.238")[0];
        Assert.Equal("vis0", toHomeAgent.GetProperty("dev").GetString());
        Assert.Equal("10.1.0.1", toHomeAgent.GetProperty("gateway").GetString());
        Assert.Equal("ma-tun0", lab.Laptop.IpJson("route", "get", "10.9.0.2", "from", "172.110.4.180")[0].GetProperty("dev").GetString());
        Assert.Equal("ma-tun0", lab.Laptop.IpJson("route", "get", "10.9.0.2", "mark", "0x100000")[0].GetProperty("dev").GetString());
        Assert.Equal("vis0", lab.Laptop.IpJson("route", "get", "10.9.0.2")[0].GetProperty("dev").GetString());

        lab.Logger.Clear();
        lab.ApplyExactly(s);
        Assert.Empty(lab.Logger.Mutations);
    }

    [Fact]
    public async Task TcpPorts_LeaveWithTheHomeAddress_OtherPortsKeepTheVisitedAddress()
    {
        using var lab = new MobileAgentHostLab();
        // Strict reverse-path filtering everywhere on the laptop: the tunnel's own loose setting must still let the NATed replies in.
        lab.Laptop.Sh("sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1");
        lab.ApplyExactly(MobileAgentHostLab.State() with { TcpPorts = MobileAgentHostLab.Ports(25) });

        (IPAddress seen25, IPAddress local25) = await lab.Connect(25);
        Assert.Equal(MobileAgentHostLab.Home, seen25);
        Assert.Equal(MobileAgentHostLab.CareOf1, local25); // the socket keeps its address: the home address is the NAT's doing

        (IPAddress seen80, _) = await lab.Connect(80);
        Assert.Equal(MobileAgentHostLab.CareOf1, seen80);
    }

    [Fact]
    public void Move_ChangesTheTunnelInPlace_AndRepinsTheHomeAgent()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentState at1 = MobileAgentHostLab.State(1) with { HomePrefixThroughTunnel = true, TcpPorts = MobileAgentHostLab.Ports(25) };
        MobileAgentReached r1 = lab.ApplyExactly(at1);

        lab.Logger.Clear();
        MobileAgentState at2 = at1 with { CareOfAddress = MobileAgentHostLab.CareOf2, VisitedGateway = MobileAgentHostLab.Gateway2 };
        MobileAgentReached r2 = lab.ApplyExactly(at2);

        Assert.Equal(r1.TunnelIndex, r2.TunnelIndex);
        Assert.Equal(
        [
            "(stand-in, nothing in the kernel) ip link set dev ma-tun0 type ipip local 10.2.0.2 remote 172.110.4.238 ttl 64 pmtudisc",
            "ip route replace 172.110.4.238/32 via 10.2.0.1 proto 77",
        ], lab.Logger.Mutations);
        Assert.Equal("vis1", lab.Laptop.IpJson("route", "get", "172.110.4.238")[0].GetProperty("dev").GetString());
    }

    [Fact]
    public void ApplyNull_RemovesEveryMarkedObject_AndNothingElse()
    {
        using var lab = new MobileAgentHostLab();
        // The administrator's own objects, some looking like ours in one respect.
        lab.Laptop.Ip("rule", "add", "from", "10.1.0.2", "lookup", "100", "priority", "10005");            // in our band, not protocol 77
        lab.Laptop.Ip("rule", "add", "from", "10.1.0.3", "lookup", "100", "priority", "20000", "protocol", "77"); // protocol 77, outside our band
        lab.Laptop.Ip("route", "add", "10.50.0.0/16", "via", "10.1.0.1", "proto", "static");
        lab.Laptop.Ip("route", "add", "10.51.0.0/16", "dev", "vis0", "table", "19777", "proto", "static");
        lab.Laptop.Ip("link", "add", "ma-admin", "type", "veth", "peer", "name", "ma-admin-p");          // our name prefix, no alias
        lab.Laptop.Nft("add", "table", "inet", "mobilityagents");                                          // our table's name, another family
        lab.Laptop.Nft("add", "table", "ip", "admin");
        List<string> admin = MobileAgentRender.Unmarked(lab.Laptop);

        lab.ApplyExactly(MobileAgentHostLab.State() with { HomePrefixThroughTunnel = true, FwMarkSelection = true, TcpPorts = MobileAgentHostLab.Ports(25, 80) });
        MobileAgentReached r = lab.Reconciler.Apply(null);

        Assert.Empty(r.Errors);
        Assert.Null(r.State);
        Assert.Null(r.TunnelIndex);
        Assert.Empty(lab.Marked());
        Assert.Equal(admin, MobileAgentRender.Unmarked(lab.Laptop));
        Assert.Contains("rule 10005 from 10.1.0.2 lookup 100", admin);

        // Tearing down what is not there changes nothing.
        lab.Logger.Clear();
        Assert.Empty(lab.Reconciler.Sweep().Removed);
        Assert.Empty(lab.Logger.Mutations);
    }

    [Fact]
    public void Restart_AdoptsWhatMatches_WithoutAnyChange()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentState s = MobileAgentHostLab.State() with { HomePrefixThroughTunnel = true, TcpPorts = MobileAgentHostLab.Ports(25) };
        MobileAgentReached first = lab.ApplyExactly(s);

        lab.Logger.Clear();
        MobileAgentReconciler restarted = lab.NewReconciler();
        MobileAgentReached again = lab.ApplyExactly(s, restarted);

        Assert.Empty(lab.Logger.Mutations);
        Assert.Equal(first.TunnelIndex, again.TunnelIndex);
    }

    [Fact]
    public void Restart_RemovesMarkedObjectsTheNewStateDoesNotOwn()
    {
        using var lab = new MobileAgentHostLab();
        lab.ApplyExactly(MobileAgentHostLab.State() with { HomePrefixThroughTunnel = true, FwMarkSelection = true, TcpPorts = MobileAgentHostLab.Ports(25) });
        // Orphans a crash could leave: a rule and routes of ours no state owns.
        lab.Laptop.Ip("rule", "add", "from", "172.110.4.99", "lookup", "19777", "priority", "10020", "protocol", "77");
        lab.Laptop.Ip("route", "add", "10.99.0.0/16", "dev", "ma-tun0", "table", "19777", "proto", "77");
        lab.Laptop.Ip("route", "add", "192.0.2.1/32", "via", "10.2.0.1", "proto", "77");

        MobileAgentReconciler restarted = lab.NewReconciler();
        MobileAgentState smaller = MobileAgentHostLab.State() with { HomeAddress = IPAddress.Parse("172.110.4.181") };
        lab.ApplyExactly(smaller, restarted);
        Assert.Contains("ip rule del from 172.110.4.99 lookup 19777 priority 10020 protocol 77", lab.Logger.Mutations);
        Assert.Contains("nft delete table ip mobilityagents", lab.Logger.Mutations);
    }

    [Fact]
    public void FailedStep_RollsBackWhatThisApplyAdded()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentState a = MobileAgentHostLab.State() with { TcpPorts = MobileAgentHostLab.Ports(25) };
        MobileAgentReached ra = lab.ApplyExactly(a);

        // A new home address, MTU and ports, and the prefix through the tunnel via a gateway the
        // laptop cannot reach: the pin route fails after the MTU and the address were changed.
        MobileAgentState b = a with
        {
            HomeAddress = IPAddress.Parse("172.110.4.181"),
            TunnelMtu = 1400,
            TcpPorts = MobileAgentHostLab.Ports(587),
            HomePrefixThroughTunnel = true,
            VisitedGateway = IPAddress.Parse("10.7.7.7"),
        };
        lab.Logger.Clear();
        MobileAgentReached rb = lab.Reconciler.Apply(b);

        MobileAgentError e = Assert.Single(rb.Errors);
        Assert.Equal("ip route replace 172.110.4.238/32 via 10.7.7.7 proto 77", e.Operation);
        Assert.StartsWith("ip route replace 172.110.4.238/32 via 10.7.7.7 proto 77: ENETUNREACH", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.Errno);
        Assert.Equal(a, rb.State);
        Assert.Equal(ra.TunnelIndex, rb.TunnelIndex);
        Assert.Equal(lab.Expected(a), lab.Marked());
        Assert.Contains(lab.Logger.Entries, x => x.Id == 2004 && x.Level == LogLevel.Warning);
        Assert.Equal(
        [
            "ip link set dev ma-tun0 mtu 1400",
            "ip addr add 172.110.4.181/32 dev ma-tun0 proto 77",
            "ip route replace 172.110.4.238/32 via 10.7.7.7 proto 77",
            "ip addr del 172.110.4.181/32 dev ma-tun0",
            "ip link set dev ma-tun0 mtu 1480",
        ], lab.Logger.Mutations);

        // The same failure from nothing leaves nothing.
        MobileAgentReached fresh = lab.NewReconciler().Apply(null);
        Assert.Empty(fresh.Errors);
        MobileAgentReached rc = lab.NewReconciler().Apply(b);
        Assert.Null(rc.State);
        Assert.Single(rc.Errors);
        Assert.Empty(lab.Marked());
    }

    [Fact]
    public void ObjectsThatAreNotOurs_InTheWay_AreRefusedBeforeAnyChange()
    {
        using var lab = new MobileAgentHostLab();
        lab.Laptop.Ip("link", "add", "ma-tun0", "type", "veth", "peer", "name", "admin-p");
        List<string> before = MobileAgentRender.Unmarked(lab.Laptop);
        MobileAgentReached r = lab.Reconciler.Apply(MobileAgentHostLab.State());
        Assert.Null(r.State);
        Assert.Contains("not ours", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Empty(lab.Logger.Mutations);
        Assert.Equal(before, MobileAgentRender.Unmarked(lab.Laptop));

        lab.Laptop.Ip("link", "del", "ma-tun0");
        lab.Laptop.Ip("route", "add", "172.110.4.0/24", "dev", "vis1", "proto", "static");
        before = MobileAgentRender.Unmarked(lab.Laptop);
        r = lab.Reconciler.Apply(MobileAgentHostLab.State() with { HomePrefixThroughTunnel = true });
        Assert.Null(r.State);
        Assert.Contains("is not ours (protocol 4): left alone", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Empty(lab.Marked());
        Assert.Equal(before, MobileAgentRender.Unmarked(lab.Laptop));
    }

    [Fact]
    public void InvalidState_IsRefused_NamingTheProperty()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentReached r = lab.Reconciler.Apply(MobileAgentHostLab.State() with { HomePrefixThroughTunnel = true, VisitedGateway = null, TunnelName = "tun0" });
        Assert.Null(r.State);
        Assert.Contains(r.Errors, e => e.Message.Contains("VisitedGateway", StringComparison.Ordinal));
        Assert.Contains(r.Errors, e => e.Message.Contains("TunnelName", StringComparison.Ordinal));
        Assert.Empty(lab.Logger.Mutations);
    }

    [Fact]
    public void Concerns_TheDeletionOfOurObjects_AndReassertRepairsThem()
    {
        using var lab = new MobileAgentHostLab();
        MobileAgentState s = MobileAgentHostLab.State() with { FwMarkSelection = true };
        MobileAgentReached r = lab.ApplyExactly(s);
        RuleEntry ours = lab.Laptop.Handle.Rules.List().Single(x => x.Priority == 10010);
        Assert.True(lab.Reconciler.Concerns(new RuleEvent(ours) { Deleted = true }));
        Assert.False(lab.Reconciler.Concerns(new RuleEvent(ours with { Priority = 10020 }) { Deleted = true }));
        Assert.False(lab.Reconciler.Concerns(new RuleEvent(ours)));
        Assert.True(lab.Reconciler.Concerns(new LinkEvent(new Link { Index = r.TunnelIndex!.Value, Name = "ma-tun0" }) { Deleted = true }));
        Assert.True(lab.Reconciler.Concerns(new ResyncRequired()));

        lab.Laptop.Ip("rule", "del", "priority", "10010");
        lab.Laptop.Ip("route", "flush", "table", "19777");
        Assert.NotEqual(lab.Expected(s), lab.Marked());
        MobileAgentReached again = lab.Reconciler.Reassert("rule deleted")!;
        Assert.True(again.Reached(s));
        Assert.Equal(lab.Expected(s), lab.Marked());
    }

    [Fact]
    public void NftablesTable_IsWhatTheLoggedNftCommandMakes()
    {
        // The one-line nft command the log shows is a faithful equivalent of the JSON batch sent.
        using var ours = new MobileAgentTestNamespace();
        using var byHand = new MobileAgentTestNamespace();
        MobileAgentState s = MobileAgentHostLab.State() with { TcpPorts = MobileAgentHostLab.Ports(25, 587, 993) };
        MobileNftTable.Replace(ours.Namespace, s);
        string cmd = MobileNftTable.DescribeReplace(s);
        Assert.StartsWith("nft '", cmd, StringComparison.Ordinal);
        byHand.Nft(cmd[5..^1]);
        Assert.Equal(WithoutHandles(byHand.NftJson("list", "ruleset")), WithoutHandles(ours.NftJson("list", "ruleset")));

        JsonArray listed = MobileNftTable.List(ours.Namespace)!;
        Assert.True(MobileNftTable.Matches(listed, s));
        Assert.False(MobileNftTable.Matches(listed, s with { TcpPorts = MobileAgentHostLab.Ports(25) }));
        Assert.False(MobileNftTable.Matches(listed, s with { TunnelName = "ma-tun1" }));
        Assert.False(MobileNftTable.Matches(listed, s with { HomeAddress = IPAddress.Parse("172.110.4.181") }));

        MobileNftTable.Delete(ours.Namespace);
        MobileNftTable.Delete(ours.Namespace); // absent: still fine
        Assert.Null(MobileNftTable.List(ours.Namespace));
    }

    [Fact]
    public void NftablesErrors_NameTheCommand_AndCarryNftsText()
    {
        using var ns = new MobileAgentTestNamespace();
        NftablesException e = Assert.Throws<NftablesException>(() => Nftables.Run(ns.Namespace,
            """{"nftables":[{"delete":{"table":{"family":"ip","name":"nosuchtable"}}}]}""", "nft delete table ip nosuchtable"));
        Assert.Equal("nft delete table ip nosuchtable", e.Operation);
        Assert.Contains("No such file or directory", e.NftError, StringComparison.Ordinal);
        Assert.StartsWith("nft delete table ip nosuchtable: ", e.Message, StringComparison.Ordinal);
        Assert.False(e.Unavailable);
    }

    private static string WithoutHandles(JsonElement root)
    {
        JsonNode n = JsonNode.Parse(root.GetRawText())!;
        foreach (JsonNode? o in n["nftables"]!.AsArray())
        {
            foreach (KeyValuePair<string, JsonNode?> kv in o!.AsObject())
            {
                (kv.Value as JsonObject)?.Remove("handle");
            }
        }

        return n.ToJsonString();
    }
}
