using System.Net;
using MobilityAgents.Netlink;
using Xunit.Sdk;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// Desired states in random order (tailscale's TestRouterStates, randomised): after every Apply the
/// fake kernel holds exactly the rendering of the desired state, moves never recreate a link, and
/// the administrator's objects never change. With random faults: every reached tunnel is complete,
/// nothing is half-built unless a delete failed (and then it was reported), and one clean Apply
/// converges.
/// </summary>
public class RandomReplayTests
{
    private const int Steps = 400;
    private static readonly string[] Ids = [.. Enumerable.Range(0, 8).Select(i => Convert.ToHexStringLower(BitConverter.GetBytes(i * 7919 + 13)) + i)];
    private static readonly IPAddress[] Homes = [.. Enumerable.Range(10, 10).Select(i => IPAddress.Parse($"192.0.2.{i}"))];
    private static readonly IPAddress[] CareOfs = [.. Enumerable.Range(2, 6).Select(i => IPAddress.Parse($"198.51.100.{i}")).Concat(Enumerable.Range(2, 6).Select(i => IPAddress.Parse($"203.0.113.{i}")))];
    private static readonly IPAddress[] Outers = [IPAddress.Parse("198.51.100.1"), IPAddress.Parse("198.51.100.1"), IPAddress.Parse("198.51.100.1"), IPAddress.Parse("198.51.100.200")];

    /// <summary>The next desired state: each binding stays, moves or goes; new ones come; sometimes null, a new outer address or MTU.</summary>
    private static HomeAgentState? Next(Random rnd, HomeAgentState? prev)
    {
        if (rnd.Next(20) == 0)
        {
            return null;
        }

        IPAddress outer = prev is not null && rnd.Next(10) > 0 ? prev.OuterAddress : Outers[rnd.Next(Outers.Length)];
        int mtu = prev is not null && rnd.Next(15) > 0 ? prev.TunnelMtu : rnd.Next(4) == 0 ? 1400 : 1480;
        var tunnels = new List<HomeAgentTunnel>();
        foreach (HomeAgentTunnel t in prev?.Tunnels.Values ?? Enumerable.Empty<HomeAgentTunnel>())
        {
            switch (rnd.Next(10))
            {
                case < 6: tunnels.Add(t); break;
                case < 8: tunnels.Add(t with { CareOfAddress = IPAddress.None }); break; // moves: filled in below
                default: break;                                                         // goes
            }
        }

        foreach (string id in Ids.Where(id => tunnels.All(t => t.BindingId != id)))
        {
            if (rnd.Next(4) == 0)
            {
                tunnels.Add(new HomeAgentTunnel(id, IPAddress.None, IPAddress.None));
            }
        }

        // Free addresses are those not held by a binding that stays: a replacement may reuse a leaving binding's at once.
        List<IPAddress> freeHomes = [.. Homes.Where(h => tunnels.All(t => !t.HomeAddress.Equals(h)))];
        List<IPAddress> freeCareOfs = [.. CareOfs.Where(c => tunnels.All(t => !t.CareOfAddress.Equals(c)))];
        IPAddress Take(List<IPAddress> from)
        {
            IPAddress a = from[rnd.Next(from.Count)];
            from.Remove(a);
            return a;
        }

        tunnels = [.. tunnels.Select(t => t with
        {
            HomeAddress = t.HomeAddress.Equals(IPAddress.None) ? Take(freeHomes) : t.HomeAddress,
            CareOfAddress = t.CareOfAddress.Equals(IPAddress.None) ? Take(freeCareOfs) : t.CareOfAddress,
        })];
        return new HomeAgentState(outer, "lan0", tunnels, mtu);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_desired_states_are_reached_exactly_moves_keep_links_and_unmarked_objects_are_never_touched(int seed)
    {
        var rnd = new Random(seed);
        var lab = new Lab();
        List<string> admin = lab.Kernel.RenderUnmarked();
        HomeAgentState? prev = null;
        HomeAgentReached? prevReached = null;
        int moves = 0, replacements = 0, teardowns = 0, parked = 0;
        for (int step = 0; step < Steps; step++)
        {
            HomeAgentState? next = Next(rnd, prev);
            lab.Kernel.Operations.Clear();
            HomeAgentReached r = lab.Reconciler.Apply(next);
            string context = $"seed {seed} step {step}\nfrom {prev}\nto   {next}\nops:\n  {string.Join("\n  ", lab.Kernel.Operations)}";

            Check(r.Errors.IsEmpty, context + "\nerrors: " + string.Join("; ", r.Errors));
            Check(Equals(next, r.State), context);
            Check(FakeKernel.Expected(next).SequenceEqual(lab.Kernel.RenderMarked()), context + "\nkernel:\n  " + string.Join("\n  ", lab.Kernel.RenderMarked()));
            Check(admin.SequenceEqual(lab.Kernel.RenderUnmarked()), context + "\nunmarked objects changed");
            Check(next is not { Tunnels.Count: > 0 } || lab.Kernel.IpForward, context + "\nforwarding off");
            foreach ((string id, TunnelLink link) in r.Links)
            {
                if (prevReached?.Links.TryGetValue(id, out TunnelLink? before) == true)
                {
                    // Kept bindings (moved or not) keep their link: same index, never deleted.
                    Check(before == link, context + $"\n{id}: link {before} became {link}");
                    Check(!lab.Kernel.Operations.Contains($"ip link del dev {link.Name}"), context + $"\n{id}: link deleted");
                    moves += prev!.Tunnels[id].CareOfAddress.Equals(next!.Tunnels[id].CareOfAddress) ? 0 : 1;
                }
            }

            replacements += next?.Tunnels.Values.Count(t => prev?.Tunnels.Values.Any(p => p.HomeAddress.Equals(t.HomeAddress) && p.BindingId != t.BindingId) == true) ?? 0;
            teardowns += next is null && prev is { Tunnels.Count: > 0 } ? 1 : 0;
            parked += lab.Kernel.Operations.Count(o => o.Contains("type ipip", StringComparison.Ordinal) && !o.Contains("remote", StringComparison.Ordinal));
            prev = next;
            prevReached = r;
        }

        // The walk exercised what it is meant to.
        Assert.True(moves > 50, $"{moves} moves");
        Assert.True(replacements > 10, $"{replacements} replacements");
        Assert.True(teardowns > 5, $"{teardowns} teardowns");
        Assert.True(parked > 0, $"{parked} links parked to break a cycle of moves");
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Random_faults_never_leave_a_half_built_binding_and_one_clean_apply_converges(int seed)
    {
        var rnd = new Random(seed);
        var faults = new Random(seed * 31);
        var lab = new Lab();
        List<string> admin = lab.Kernel.RenderUnmarked();
        HomeAgentState? prev = null;
        int failedApplies = 0, rolledBack = 0;
        for (int step = 0; step < Steps; step++)
        {
            HomeAgentState? next = Next(rnd, prev);
            lab.Kernel.Operations.Clear();
            lab.Kernel.Fault = _ => faults.Next(25) == 0 ? Errno.EIO : null;
            HomeAgentReached r = lab.Reconciler.Apply(next);
            lab.Kernel.Fault = null;
            string context = $"seed {seed} step {step}\nto {next}\nerrors:\n  {string.Join("\n  ", r.Errors)}\nops:\n  {string.Join("\n  ", lab.Kernel.Operations)}\nkernel:\n  {string.Join("\n  ", lab.Kernel.RenderMarked())}";
            failedApplies += r.Errors.IsEmpty ? 0 : 1;
            rolledBack += lab.Logger.Entries.Count(e => e.Id == 1003);
            lab.Logger.Entries.Clear();

            Check(admin.SequenceEqual(lab.Kernel.RenderUnmarked()), context + "\nunmarked objects changed");
            bool listed = !r.Errors.Any(e => e.Message.Contains(" show", StringComparison.Ordinal));
            if (next is not null && listed)
            {
                // Reached tunnels: desired ones, home address as desired, care-of as desired or (a failed move) as before.
                Check(r.State!.Tunnels.Keys.All(next.Tunnels.ContainsKey), context);
                Check(r.State.Tunnels.Values.All(t => t.HomeAddress.Equals(next.Tunnels[t.BindingId].HomeAddress)), context);
                // Each reached tunnel is complete in the kernel.
                List<string> marked = lab.Kernel.RenderMarked();
                Check(FakeKernel.Expected(r.State).All(marked.Contains), context + "\nreached but incomplete");
                // And nothing else is there unless deleting it failed (and was reported).
                bool deleteFailed = r.Errors.Any(e => e.Message.Contains(" del", StringComparison.Ordinal));
                Check(deleteFailed || FakeKernel.Expected(r.State).SequenceEqual(marked), context + "\nleftover objects without a failed delete");
            }

            if (step % 3 == 2 || r.Errors.IsEmpty)
            {
                HomeAgentReached clean = lab.Reconciler.Apply(next);
                string c2 = context + "\nafter a clean apply:\n  " + string.Join("\n  ", clean.Errors) + "\n  " + string.Join("\n  ", lab.Kernel.RenderMarked());
                Check(clean.Reached(next), c2);
                Check(FakeKernel.Expected(next).SequenceEqual(lab.Kernel.RenderMarked()), c2);
            }

            prev = next;
        }

        Assert.True(failedApplies > 40, $"{failedApplies} applies saw a fault");
        Assert.True(rolledBack > 10, $"{rolledBack} bindings rolled back");
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new XunitException(message);
        }
    }
}
