using MobilityAgents.Netlink;
using static MobilityAgents.Reconciler.Tests.Lab;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>One kernel operation fails: the binding it belongs to is rolled back and reported, the rest goes on.</summary>
public class FaultTests
{
    private static readonly HomeAgentTunnel A = Tunnel("binding-a", "192.0.2.10", "198.51.100.2");
    private static readonly HomeAgentTunnel B = Tunnel("binding-b", "192.0.2.11", "203.0.113.2");

    private static Func<string, int?> FailOnce(Func<string, bool> match, int errno = Errno.EPERM)
    {
        bool done = false;
        return op =>
        {
            if (!done && match(op))
            {
                done = true;
                return errno;
            }

            return null;
        };
    }

    [Theory]
    [InlineData("ip link add {0}")]
    [InlineData("ip link set dev {0} alias")]
    [InlineData("sysctl -n net.ipv4.conf.{0}.rp_filter")]
    [InlineData("sysctl -w net.ipv4.conf.{0}.rp_filter")]
    [InlineData("ip link set dev {0} up")]
    [InlineData("ip route replace 192.0.2.10/32")]
    [InlineData("ip neigh add proxy 192.0.2.10")]
    public void A_step_of_a_new_binding_failing_leaves_nothing_of_it_and_the_other_binding_intact(string failing)
    {
        var lab = new Lab();
        List<string> admin = lab.Kernel.RenderUnmarked();
        string prefix = string.Format(System.Globalization.CultureInfo.InvariantCulture, failing, HomeAgentTunnel.LinkNameFor(A.BindingId));
        lab.Kernel.Fault = FailOnce(op => op.StartsWith(prefix, StringComparison.Ordinal), Errno.ENOBUFS);

        HomeAgentReached r = lab.Reconciler.Apply(State(A, B));

        Assert.Equal(State(B), r.State);
        Assert.False(r.Links.ContainsKey(A.BindingId));
        ReconcileError e = Assert.Single(r.Errors);
        Assert.Equal(A.BindingId, e.BindingId);
        Assert.StartsWith(prefix, e.Message, StringComparison.Ordinal);
        Assert.Contains("ENOBUFS", e.Message, StringComparison.Ordinal);
        Assert.Equal(FakeKernel.Expected(State(B)), lab.Kernel.RenderMarked()); // nothing half-applied
        Assert.Equal(admin, lab.Kernel.RenderUnmarked());
        Assert.DoesNotContain(lab.Kernel.Announcements, a => a.Address.Equals(A.HomeAddress));
        Assert.Contains(lab.Logger.Entries, l => l.Id == 1003 && l.Message.Contains(A.BindingId, StringComparison.Ordinal));

        lab.Kernel.Fault = null;
        lab.ApplyExactly(State(A, B));
    }

    [Fact]
    public void A_failed_repair_of_an_existing_binding_rolls_it_back_too()
    {
        var lab = new Lab();
        HomeAgentReached first = lab.ApplyExactly(State(A, B));
        lab.Kernel.AdminSetDown(first.Links[A.BindingId].Index);
        lab.Kernel.Fault = FailOnce(op => op.StartsWith("ip route replace 192.0.2.10/32", StringComparison.Ordinal));

        HomeAgentReached r = lab.Reconciler.Apply(State(A, B));

        Assert.Equal(State(B), r.State);
        Assert.Equal(FakeKernel.Expected(State(B)), lab.Kernel.RenderMarked());
        lab.Kernel.Fault = null;
        lab.ApplyExactly(State(A, B));
    }

    [Fact]
    public void A_failed_move_keeps_the_complete_tunnel_at_its_old_care_of_address_and_says_so()
    {
        var lab = new Lab();
        HomeAgentReached first = lab.ApplyExactly(State(A, B));
        HomeAgentTunnel moved = A with { CareOfAddress = Ip("203.0.113.50") };
        lab.Kernel.Fault = FailOnce(op => op.Contains("type ipip", StringComparison.Ordinal) && op.StartsWith("ip link set", StringComparison.Ordinal));

        HomeAgentReached r = lab.Reconciler.Apply(State(moved, B));

        Assert.Equal(State(A, B), r.State); // what exists: A still points at its old care-of address
        Assert.False(r.Reached(State(moved, B)));
        Assert.Equal(first.Links, r.Links);
        Assert.StartsWith($"ip link set dev {HomeAgentTunnel.LinkNameFor(A.BindingId)} type ipip local 198.51.100.1 remote 203.0.113.50", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Equal(FakeKernel.Expected(State(A, B)), lab.Kernel.RenderMarked());

        lab.Kernel.Fault = null;
        Assert.Equal(first.Links, lab.ApplyExactly(State(moved, B)).Links);
    }

    [Fact]
    public void A_failed_rollback_is_reported_and_the_leftover_removed_by_the_next_apply()
    {
        var lab = new Lab();
        string name = HomeAgentTunnel.LinkNameFor(A.BindingId);
        lab.Kernel.Fault = op =>
            op.StartsWith("ip route replace 192.0.2.10/32", StringComparison.Ordinal) || op == $"ip link del dev {name}" ? Errno.EBUSY : null;

        HomeAgentReached r = lab.Reconciler.Apply(State(A, B));

        Assert.Equal(State(B), r.State);
        Assert.Equal(2, r.Errors.Length);
        Assert.All(r.Errors, e => Assert.Equal(A.BindingId, e.BindingId));
        Assert.StartsWith($"ip link del dev {name}: EBUSY", r.Errors[1].Message, StringComparison.Ordinal);
        Assert.Contains(lab.Kernel.RenderMarked(), l => l.StartsWith($"link {name}", StringComparison.Ordinal)); // the leftover is there, and known

        lab.Kernel.Fault = null;
        lab.ApplyExactly(State(B));
    }

    [Fact]
    public void A_failed_removal_is_reported_and_retried_by_the_next_apply()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A, B));
        lab.Kernel.Fault = FailOnce(op => op == $"ip link del dev {HomeAgentTunnel.LinkNameFor(A.BindingId)}");

        HomeAgentReached r = lab.Reconciler.Apply(State(B));

        Assert.Equal(State(B), r.State);
        Assert.Single(r.Errors);
        lab.ApplyExactly(State(B));
    }

    [Fact]
    public void A_listing_that_fails_changes_nothing_and_reaches_nothing()
    {
        var lab = new Lab();
        lab.ApplyExactly(State(A));
        List<string> before = lab.Kernel.Render();
        lab.Kernel.Operations.Clear();
        lab.Kernel.Fault = op => op == "ip route show table main" ? Errno.EINTR : null;

        HomeAgentReached r = lab.Reconciler.Apply(State(B));

        Assert.Equal(State(), r.State);
        Assert.StartsWith("ip route show table main: EINTR", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Empty(lab.Kernel.Operations);
        Assert.Equal(before, lab.Kernel.Render());
    }

    [Fact]
    public void A_gratuitous_arp_that_fails_is_reported_but_the_binding_is_in_place()
    {
        var lab = new Lab();
        lab.Kernel.Fault = op => op.StartsWith("arping", StringComparison.Ordinal) ? Errno.EPERM : null;

        HomeAgentReached r = lab.Reconciler.Apply(State(A));

        Assert.Equal(State(A), r.State);
        Assert.Contains("EPERM", Assert.Single(r.Errors).Message, StringComparison.Ordinal);
        Assert.Equal(FakeKernel.Expected(State(A)), lab.Kernel.RenderMarked());
    }

    [Fact]
    public void Forwarding_that_cannot_be_turned_on_is_reported()
    {
        var lab = new Lab();
        lab.Kernel.Fault = op => op == "sysctl -w net.ipv4.ip_forward=1" ? Errno.EACCES : null;

        HomeAgentReached r = lab.Reconciler.Apply(State(A));

        Assert.False(r.IpForwarding);
        Assert.Null(Assert.Single(r.Errors).BindingId);
        Assert.Equal(State(A), r.State);
    }
}
