using System.Net;
using MobilityAgents.Core;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Reconciler.Tests.Lab;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>The reconciler's diff against the in-memory kernel, one scenario at a time.</summary>
public class ReconcilerTests
{
    private static readonly HomeAgentTunnel A = Tunnel("binding-a", "192.0.2.10", "198.51.100.2");
    private static readonly HomeAgentTunnel B = Tunnel("binding-b", "192.0.2.11", "203.0.113.2");

    [Fact]
    public void A_new_binding_gets_every_object_marked_in_order_each_logged_as_its_ip_equivalent_first()
    {
        var lab = new Lab();
        string name = HomeAgentTunnel.LinkNameFor(A.BindingId);

        HomeAgentReached r = lab.ApplyExactly(State(A));

        Assert.True(r.IpForwarding);
        Assert.True(lab.Kernel.IpForward);
        Assert.Equal(name, r.Links[A.BindingId].Name);
        Assert.Equal(
        [
            "sysctl -w net.ipv4.ip_forward=1",
            $"ip link add {name} mtu 1480 type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 pmtudisc",
            $"ip link set dev {name} alias \"mobilityagents:binding-a\"",
            $"sysctl -w net.ipv4.conf.{name}.rp_filter=1",
            $"ip link set dev {name} up",
            $"ip route replace 192.0.2.10/32 dev (ifindex {r.Links[A.BindingId].Index}) table 254 proto 77",
            $"ip neigh add proxy 192.0.2.10 dev (ifindex {lab.Lan})",
            "arping -U -A -c 1 -I lan0 192.0.2.10",
        ], lab.Kernel.Operations);
        Assert.Equal(
        [
            "sysctl -w net.ipv4.ip_forward=1",
            $"ip link add {name} mtu 1480 type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 pmtudisc; ip link set dev {name} alias \"mobilityagents:binding-a\"",
            $"sysctl -w net.ipv4.conf.{name}.rp_filter=1",
            $"ip link set dev {name} up",
            $"ip route replace 192.0.2.10/32 dev {name} proto 77",
            "ip neigh add proxy 192.0.2.10 dev lan0 protocol 77",
        ], lab.Logger.Mutations);
        (int index, IPAddress address, System.Net.NetworkInformation.PhysicalAddress mac) = Assert.Single(lab.Kernel.Announcements);
        Assert.Equal((lab.Lan, A.HomeAddress, "02005E005301"), (index, address, mac.ToString()));
    }

    [Fact]
    public void Applying_the_same_state_again_changes_nothing()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A, B));
        lab.Kernel.Operations.Clear();

        lab.ApplyExactly(State(B, A));

        Assert.Empty(lab.Kernel.Operations);
        Assert.Single(lab.Kernel.Announcements, a => a.Address.Equals(A.HomeAddress));
    }

    [Fact]
    public void A_move_repoints_the_link_in_place_with_every_parameter_and_nothing_else()
    {
        var lab = new Lab();
        HomeAgentReached before = lab.ApplyExactly(State(A, B));
        lab.Kernel.Operations.Clear();
        HomeAgentTunnel moved = A with { CareOfAddress = Ip("203.0.113.77") };

        HomeAgentReached after = lab.ApplyExactly(State(moved, B));

        string name = HomeAgentTunnel.LinkNameFor(A.BindingId);
        Assert.Equal([$"ip link set dev {name} type ipip local 198.51.100.1 remote 203.0.113.77 ttl 64 pmtudisc"], lab.Kernel.Operations);
        Assert.Equal(before.Links, after.Links);
        Assert.Single(lab.Kernel.Announcements, a => a.Address.Equals(A.HomeAddress)); // the LAN already points at us
    }

    [Fact]
    public void A_chain_of_moves_onto_addresses_just_vacated_is_ordered_so_every_link_stays_in_place()
    {
        var lab = new Lab();
        HomeAgentTunnel c = Tunnel("binding-c", "192.0.2.12", "198.51.100.7");
        HomeAgentReached before = lab.ApplyExactly(State(A, B, c));
        lab.Kernel.Operations.Clear();

        // a takes b's address, b takes c's, c goes somewhere new; a new binding d takes a's old address.
        HomeAgentTunnel d = Tunnel("binding-d", "192.0.2.13", A.CareOfAddress.ToString());
        HomeAgentReached after = lab.ApplyExactly(State(
            A with { CareOfAddress = B.CareOfAddress }, B with { CareOfAddress = c.CareOfAddress }, c with { CareOfAddress = Ip("203.0.113.99") }, d));

        Assert.Equal(before.Links.Values, after.Links.Values.Where(l => l != after.Links[d.BindingId]));
        Assert.DoesNotContain(lab.Kernel.Operations, o => o.StartsWith("ip link del", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_laptops_swapping_addresses_are_repointed_in_place_through_a_parked_link()
    {
        var lab = new Lab();
        HomeAgentReached before = lab.ApplyExactly(State(A, B));
        lab.Kernel.Operations.Clear();

        HomeAgentReached after = lab.ApplyExactly(State(A with { CareOfAddress = B.CareOfAddress }, B with { CareOfAddress = A.CareOfAddress }));

        Assert.Equal(before.Links, after.Links);
        string a = HomeAgentTunnel.LinkNameFor(A.BindingId), b = HomeAgentTunnel.LinkNameFor(B.BindingId);
        Assert.Equal(
        [
            $"ip link set dev {b} type ipip local 198.51.100.1 ttl 64 pmtudisc",
            $"ip link set dev {a} type ipip local 198.51.100.1 remote 203.0.113.2 ttl 64 pmtudisc",
            $"ip link set dev {b} type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 pmtudisc",
        ], lab.Kernel.Operations);
    }

    [Fact]
    public void A_new_outer_address_repoints_every_link_in_place()
    {
        var lab = new Lab();
        HomeAgentReached before = lab.ApplyExactly(State(A, B));
        lab.Kernel.Operations.Clear();
        var desired = new HomeAgentState(Ip("198.51.100.9"), "lan0", [A, B]);

        HomeAgentReached after = lab.ApplyExactly(desired);

        Assert.Equal(2, lab.Kernel.Operations.Count);
        Assert.All(lab.Kernel.Operations, o => Assert.Contains("type ipip local 198.51.100.9", o, StringComparison.Ordinal));
        Assert.Equal(before.Links, after.Links);
    }

    [Fact]
    public void Removing_a_binding_removes_exactly_its_proxy_entry_and_link()
    {
        var lab = new Lab();
        HomeAgentReached both = lab.ApplyExactly(State(A, B));
        lab.Kernel.Operations.Clear();

        HomeAgentReached r = lab.ApplyExactly(State(B));

        string name = HomeAgentTunnel.LinkNameFor(A.BindingId);
        Assert.Equal([$"ip neigh del proxy 192.0.2.10 dev (ifindex {lab.Lan})", $"ip link del dev {name}"], lab.Kernel.Operations);
        Assert.Equal(both.Links[B.BindingId], r.Links[B.BindingId]);
        Assert.True(lab.Kernel.IpForward);
    }

    [Fact]
    public void Apply_null_removes_every_marked_object_and_leaves_forwarding_and_the_administrators_objects()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A, B));

        HomeAgentReached r = lab.ApplyExactly(null);

        Assert.Null(r.State);
        Assert.Empty(r.Links);
        Assert.Empty(lab.Kernel.RenderMarked());
        Assert.True(lab.Kernel.IpForward); // never turned off: the gateway may forward for others
        Assert.Contains("link vpn0 ipip local 198.51.100.1 remote 198.51.100.250 ttl 64 pmtudisc mtu 1480 up alias \"mobilityagents:not-really\" rp_filter 2", lab.Kernel.Render());
        Assert.Contains("route 192.0.2.250/32 dev up0 proto 77", lab.Kernel.Render());
        Assert.Contains("proxy 192.0.2.200 dev lan0", lab.Kernel.Render());
    }

    [Fact]
    public void An_empty_desired_state_is_not_a_teardown_of_the_state_record_but_removes_the_tunnels()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A));

        HomeAgentReached r = lab.ApplyExactly(State());

        Assert.Equal(State(), r.State);
        Assert.Empty(lab.Kernel.RenderMarked());
    }

    [Fact]
    public void A_replacement_binding_for_the_same_home_address_takes_the_route_over_before_the_old_link_goes()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A));
        lab.Kernel.Operations.Clear();
        HomeAgentTunnel replacement = Tunnel("binding-a2", "192.0.2.10", "198.51.100.3");

        lab.ApplyExactly(State(replacement));

        string oldName = HomeAgentTunnel.LinkNameFor(A.BindingId), newName = HomeAgentTunnel.LinkNameFor(replacement.BindingId);
        List<string> ops = lab.Kernel.Operations;
        int route = ops.FindIndex(o => o.StartsWith("ip route replace 192.0.2.10/32", StringComparison.Ordinal));
        int del = ops.IndexOf($"ip link del dev {oldName}");
        Assert.True(route >= 0 && del > route, string.Join('\n', ops));
        Assert.DoesNotContain(ops, o => o.StartsWith("ip neigh del", StringComparison.Ordinal)); // the proxy entry stays throughout
        Assert.Contains(ops, o => o.StartsWith($"ip link add {newName}", StringComparison.Ordinal));
    }

    [Fact]
    public void A_replacement_at_the_same_care_of_address_removes_the_old_link_first_classic_ipip_endpoints_are_unique()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A));
        lab.Kernel.Operations.Clear();
        HomeAgentTunnel replacement = A with { BindingId = "binding-a2" };

        lab.ApplyExactly(State(replacement));

        string oldName = HomeAgentTunnel.LinkNameFor(A.BindingId), newName = HomeAgentTunnel.LinkNameFor(replacement.BindingId);
        int del = lab.Kernel.Operations.IndexOf($"ip link del dev {oldName}");
        int add = lab.Kernel.Operations.FindIndex(o => o.StartsWith($"ip link add {newName}", StringComparison.Ordinal));
        Assert.True(del >= 0 && add > del, string.Join('\n', lab.Kernel.Operations));
    }

    [Fact]
    public void A_home_address_or_care_of_address_claimed_twice_is_refused_for_one_binding_only()
    {
        var lab = new Lab();
        HomeAgentTunnel sameHome = Tunnel("binding-c", "192.0.2.10", "198.51.100.5");
        HomeAgentTunnel sameCareOf = Tunnel("binding-d", "192.0.2.13", "203.0.113.2");

        HomeAgentReached r = lab.Reconciler.Apply(State(A, B, sameHome, sameCareOf));

        Assert.Equal(State(A, B), r.State);
        Assert.Equal(FakeKernel.Expected(State(A, B)), lab.Kernel.RenderMarked());
        Assert.Collection(r.Errors,
            e => Assert.Equal(("binding-c", "refused: home address 192.0.2.10 is already carried by binding binding-a"), (e.BindingId, e.Message)),
            e => Assert.Equal("binding-d", e.BindingId));
        Assert.Contains("care-of address 203.0.113.2 is already the remote of binding binding-b's tunnel", r.Errors[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_binding_whose_link_already_points_at_a_contested_care_of_address_keeps_it()
    {
        var lab = new Lab();
        HomeAgentTunnel z = Tunnel("binding-z", "192.0.2.20", "198.51.100.40");
        lab.ApplyExactly(State(z));
        HomeAgentTunnel a = Tunnel("binding-a", "192.0.2.21", "198.51.100.40"); // sorts first, but z holds the address

        HomeAgentReached r = lab.Reconciler.Apply(State(a, z));

        Assert.Equal(State(z), r.State);
        Assert.Equal("binding-a", Assert.Single(r.Errors).BindingId);
    }

    [Fact]
    public void Non_ipv4_or_non_unicast_addresses_are_refused()
    {
        var lab = new Lab();
        HomeAgentReached r = lab.Reconciler.Apply(State(
            Tunnel("v6", "2001:db8::1", "198.51.100.2"),
            Tunnel("mc", "192.0.2.10", "224.0.0.5"),
            Tunnel("self", "192.0.2.11", "198.51.100.1")));

        Assert.Equal(State(), r.State);
        Assert.Equal(["mc", "self", "v6"], r.Errors.Select(e => e.BindingId));
        Assert.Empty(lab.Kernel.RenderMarked());
    }

    [Fact]
    public void An_administrators_route_to_a_home_address_is_not_replaced_and_the_binding_is_not_built()
    {
        var lab = new Lab();
        lab.Kernel.AdminRoute(new RouteEntry { Destination = Ip("192.0.2.10"), DestinationPrefixLength = 32, OutputInterface = lab.Uplink, Protocol = 4 });
        List<string> admin = lab.Kernel.RenderUnmarked();

        HomeAgentReached r = lab.Reconciler.Apply(State(A, B));

        Assert.Equal(State(B), r.State);
        ReconcileError e = Assert.Single(r.Errors);
        Assert.Equal(A.BindingId, e.BindingId);
        Assert.Contains("192.0.2.10/32", e.Message, StringComparison.Ordinal);
        Assert.Contains("is not ours", e.Message, StringComparison.Ordinal);
        Assert.Equal(admin, lab.Kernel.RenderUnmarked());
        Assert.Equal(FakeKernel.Expected(State(B)), lab.Kernel.RenderMarked()); // A's link was rolled back
    }

    [Fact]
    public void A_foreign_link_with_a_tunnels_name_is_left_alone_and_reported()
    {
        var lab = new Lab();
        string name = HomeAgentTunnel.LinkNameFor(A.BindingId);
        lab.Kernel.AddEthernet(name, "02-00-5E-00-53-44");
        List<string> admin = lab.Kernel.RenderUnmarked();

        HomeAgentReached r = lab.Reconciler.Apply(State(A));

        Assert.Equal(State(), r.State);
        Assert.Contains($"a link named {name}", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Equal(admin, lab.Kernel.RenderUnmarked());
    }

    [Fact]
    public void A_missing_lan_interface_builds_nothing_and_removes_what_there_was()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A));

        HomeAgentReached r = lab.Reconciler.Apply(new HomeAgentState(Outer, "eth9", [A]));

        Assert.Empty(r.State!.Tunnels);
        Assert.Contains("eth9", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Empty(lab.Kernel.RenderMarked());
    }

    [Fact]
    public void Someone_elses_changes_are_repaired_by_the_next_apply()
    {
        var lab = new Lab();
        HomeAgentReached first = lab.ApplyExactly(State(A, B));
        int a = first.Links[A.BindingId].Index, b = first.Links[B.BindingId].Index;
        lab.Kernel.AdminSetDown(a);                                            // routes flushed with it
        lab.Kernel.AdminDeleteProxy(p => p.Destination.Equals(B.HomeAddress));
        lab.Kernel.Links[b].RpFilter = 0;
        lab.Kernel.Links[b].Mtu = 1400;
        lab.Kernel.IpForward = false;

        HomeAgentReached r = lab.ApplyExactly(State(A, B));

        Assert.Equal(first.Links, r.Links);
    }

    [Fact]
    public void A_marked_link_with_our_name_but_another_bindings_id_or_not_ipip_is_replaced()
    {
        var lab = new Lab();
        string name = HomeAgentTunnel.LinkNameFor(A.BindingId);
        lab.Kernel.AddRaw(new FakeKernel.FakeLink { Index = 77, Name = name, Kind = "veth", Up = true, Alias = "mobilityagents:" + A.BindingId });

        HomeAgentReached r = lab.ApplyExactly(State(A));

        Assert.NotEqual(77, r.Links[A.BindingId].Index);
    }

    [Fact]
    public void Sweep_after_a_crash_removes_every_marked_object_and_nothing_else()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A, B));
        List<string> admin = lab.Kernel.RenderUnmarked();
        var restarted = new HomeAgentReconciler(lab.Kernel);

        HomeAgentSweep s = restarted.Sweep();

        Assert.Empty(s.Errors);
        Assert.Equal(4, s.Removed.Length); // two proxy entries, two links (their routes go with them)
        Assert.Empty(lab.Kernel.RenderMarked());
        Assert.Equal(admin, lab.Kernel.RenderUnmarked());
        Assert.Empty(restarted.Sweep().Removed);
    }

    [Fact]
    public void Sweep_with_owners_keeps_their_objects_and_removes_the_rest()
    {
        var lab = new Lab();
        HomeAgentReached before = lab.ApplyExactly(State(A, B));
        lab.Kernel.AdminRoute(new RouteEntry { Destination = Ip("192.0.2.99"), DestinationPrefixLength = 32, OutputInterface = before.Links[A.BindingId].Index, Protocol = 77 });
        var restarted = new HomeAgentReconciler(lab.Kernel);

        HomeAgentSweep s = restarted.Sweep(State(A));

        Assert.Empty(s.Errors);
        Assert.Equal(FakeKernel.Expected(State(A)), lab.Kernel.RenderMarked());
        Assert.Contains(s.Removed, c => c.StartsWith("ip route del 192.0.2.99/32", StringComparison.Ordinal));
        HomeAgentReached after = restarted.Apply(State(A));
        Assert.Empty(after.Errors);
        Assert.Equal(before.Links[A.BindingId], after.Links[A.BindingId]); // restored bindings keep their links
    }

    [Fact]
    public void A_proxy_entry_marked_on_another_interface_is_ours_and_swept()
    {
        var lab = new Lab();
        lab.Kernel.AdminProxy(new NeighbourEntry { InterfaceIndex = lab.Uplink, Destination = Ip("192.0.2.77"), Proxy = true, Protocol = 77 });

        lab.ApplyExactly(State(A));

        Assert.DoesNotContain(lab.Kernel.Render(), l => l.Contains("192.0.2.77", StringComparison.Ordinal));
    }

    [Fact]
    public void Concerns_reports_deletions_of_reached_objects_only_and_reassert_repairs_them()
    {
        var lab = new Lab();
        HomeAgentReconciler rec = lab.Reconciler;
        Assert.Null(rec.Reassert("nothing applied yet"));
        HomeAgentReached r = lab.ApplyExactly(State(A));
        TunnelLink l = r.Links[A.BindingId];
        var route = new RouteEntry { Destination = A.HomeAddress, DestinationPrefixLength = 32, OutputInterface = l.Index, Protocol = Ownership.RouteProtocol };
        var proxy = new NeighbourEntry { Destination = A.HomeAddress, InterfaceIndex = lab.Lan, Proxy = true, Protocol = Ownership.NeighbourProtocol };

        Assert.True(rec.Concerns(new RouteChangeEvent(route) { Deleted = true }));
        Assert.False(rec.Concerns(new RouteChangeEvent(route)));                                                         // a new route
        Assert.False(rec.Concerns(new RouteChangeEvent(route with { Protocol = 4 }) { Deleted = true }));                 // not ours
        Assert.False(rec.Concerns(new RouteChangeEvent(route with { OutputInterface = lab.Uplink }) { Deleted = true }));
        Assert.True(rec.Concerns(new NeighbourEvent(proxy) { Deleted = true }));
        Assert.False(rec.Concerns(new NeighbourEvent(proxy with { InterfaceIndex = lab.Uplink }) { Deleted = true }));
        Assert.True(rec.Concerns(new LinkEvent(new Link { Index = l.Index, Name = l.Name }) { Deleted = true }));
        Assert.False(rec.Concerns(new LinkEvent(new Link { Index = 999, Name = "ma000000000000" }) { Deleted = true }));
        Assert.True(rec.Concerns(new ResyncRequired()));

        lab.Kernel.AdminDeleteLink(l.Index);
        HomeAgentReached healed = Assert.IsType<HomeAgentReached>(rec.Reassert("link deleted"));
        Assert.True(healed.Reached(State(A)));
        Assert.Equal(FakeKernel.Expected(State(A)), lab.Kernel.RenderMarked());
        Assert.Contains(lab.Logger.Entries, e => e.Id == 1008 && e.Message.Contains("link deleted", StringComparison.Ordinal));

        // Our own removal of a binding is not something to repair.
        TunnelLink old = healed.Links[A.BindingId];
        rec.Apply(State());
        Assert.False(rec.Concerns(new LinkEvent(new Link { Index = old.Index, Name = old.Name }) { Deleted = true }));
        Assert.False(rec.Concerns(new NeighbourEvent(proxy) { Deleted = true }));
    }

    [Fact]
    public void Desired_states_compare_by_value_whatever_the_order_of_their_tunnels()
    {
        HomeAgentState x = State(A, B), y = State(B, A);
        Assert.Equal(x, y);
        Assert.Equal(x.GetHashCode(), y.GetHashCode());
        Assert.NotSame(x.Tunnels, y.Tunnels);
        Assert.NotEqual(x, State(A));
        Assert.NotEqual(x, State(A, B with { CareOfAddress = Ip("203.0.113.3") }));
        Assert.NotEqual(x, new HomeAgentState(Outer, "lan0", [A, B], 1400));
        Assert.Equal(x, State(A).WithTunnel(B));
        Assert.Equal(State(A), x.WithoutTunnel(B.BindingId));
        Assert.Equal(["binding-a", "binding-b"], y.Tunnels.Keys);
        Assert.Throws<ArgumentException>(() => State(A, A));
        Assert.Throws<ArgumentException>(() => new HomeAgentState(IPAddress.IPv6Loopback, "lan0"));
        Assert.Throws<ArgumentException>(() => new HomeAgentState(Outer, "lan 0"));
    }

    [Fact]
    public void FromBindings_carries_ipip_bindings_only()
    {
        DateTimeOffset now = DateTimeOffset.UnixEpoch;
        Binding ipip = new("id1", "alice", "laptop", Ip("192.0.2.10"), Ip("198.51.100.2"), Encapsulation.Ipip, now, now, TimeSpan.FromMinutes(1));
        Binding udp = ipip with { Id = "id2", HomeAddress = Ip("192.0.2.11"), Encapsulation = Encapsulation.IpipUdp };

        HomeAgentState s = HomeAgentState.FromBindings(Outer, "lan0", [ipip, udp]);

        Assert.Equal(State(Tunnel("id1", "192.0.2.10", "198.51.100.2")), s);
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef")]
    [InlineData("")]
    [InlineData("a binding id with spaces/slashes:and-colons and ünïcode, far longer than any interface name")]
    public void Link_names_are_short_valid_stable_and_prefixed(string id)
    {
        string name = HomeAgentTunnel.LinkNameFor(id);
        Assert.StartsWith(Ownership.LinkNamePrefix, name, StringComparison.Ordinal);
        Assert.Equal(14, name.Length);
        LinkService.ValidateName(name);
        Assert.Equal(name, HomeAgentTunnel.LinkNameFor(id));
        Assert.NotEqual(name, HomeAgentTunnel.LinkNameFor(id + "x"));
        Assert.Equal("mobilityagents:" + id, new HomeAgentTunnel(id, Outer, Outer).LinkAlias);
    }

    [Fact]
    public void Errors_carry_the_ip_equivalent_and_the_errno_name()
    {
        var lab = new Lab();
        lab.Kernel.Fault = op => op.StartsWith("ip link add", StringComparison.Ordinal) ? Errno.EPERM : null;

        HomeAgentReached r = lab.Reconciler.Apply(State(A));

        ReconcileError e = Assert.Single(r.Errors);
        Assert.Equal(A.BindingId, e.BindingId);
        Assert.StartsWith($"ip link add {HomeAgentTunnel.LinkNameFor(A.BindingId)} mtu 1480 type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 pmtudisc: EPERM", e.Message, StringComparison.Ordinal);
        Assert.Equal($"binding {A.BindingId}: {e.Message}", e.ToString());
    }
}
