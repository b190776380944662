using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using MobilityAgents.Core;

namespace MobilityAgents.Reconciler;

/// <summary>One laptop's tunnel as the home agent programs it: its home address routed to its care-of address.</summary>
/// <param name="BindingId">The binding's id: names the link (a hash of it) and marks it (the link alias).</param>
/// <param name="HomeAddress">Routed into the tunnel, and answered for on the LAN by proxy ARP.</param>
/// <param name="CareOfAddress">The tunnel's remote end: the laptop's current address.</param>
public sealed record HomeAgentTunnel(string BindingId, IPAddress HomeAddress, IPAddress CareOfAddress)
{
    /// <summary>
    /// Carried by the userspace datapath: no link of its own; the home address is routed into
    /// <see cref="HomeAgentState.SharedLink"/> (the userspace datapath's TUN device), which
    /// encapsulates it (ipip or UDP) itself.
    /// </summary>
    public bool Shared { get; init; }

    /// <summary>How the outer packets are carried (UDP ones are always <see cref="Shared"/>).</summary>
    public Encapsulation Encapsulation { get; init; } = Encapsulation.Ipip;

    /// <summary>How many hex digits of the binding id's hash go into a link name ("ma" + 12 = 14 characters, within IFNAMSIZ 15).</summary>
    public const int LinkTagLength = 12;

    /// <summary>The tunnel of a binding table entry.</summary>
    public static HomeAgentTunnel From(Binding binding)
    {
        ArgumentNullException.ThrowIfNull(binding);
        return new(binding.Id, binding.HomeAddress, binding.CareOfAddress) { Encapsulation = binding.Encapsulation };
    }

    /// <summary>The link's name: <see cref="Ownership.LinkNamePrefix"/> and a short stable tag of the binding id.</summary>
    public string LinkName => LinkNameFor(BindingId);

    /// <summary>The link's alias (IFLA_IFALIAS): <see cref="Ownership.LinkAliasPrefix"/> and the binding id.</summary>
    public string LinkAlias => Ownership.LinkAliasPrefix + BindingId;

    /// <summary>
    /// "ma" + the first 12 hex digits of SHA-256(binding id): stable across restarts, a valid
    /// interface name whatever characters the id has, and 48 bits make a collision between two live
    /// bindings negligible (one is refused, not mixed up, if it happens).
    /// </summary>
    public static string LinkNameFor(string bindingId)
    {
        ArgumentNullException.ThrowIfNull(bindingId);
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(bindingId));
        return Ownership.LinkNamePrefix + Convert.ToHexStringLower(hash)[..LinkTagLength];
    }

    public override string ToString() => $"{BindingId} {HomeAddress} -> {CareOfAddress}{(Encapsulation == Encapsulation.IpipUdp ? " (udp)" : "")}{(Shared ? " (userspace)" : "")}";
}

/// <summary>
/// What the home agent's kernel should look like: one ipip tunnel per binding (local end
/// <see cref="OuterAddress"/>), each binding's home address routed into its tunnel and answered for
/// on <see cref="LanInterface"/> by proxy ARP, and IPv4 forwarding on while any binding exists.
/// Immutable and compared by value (the tunnels as a set), so "nothing changed" is one comparison.
/// </summary>
public sealed record HomeAgentState
{
    /// <summary>1500 (Ethernet) less the 20-byte outer IPv4 header: the recipe's MTU.</summary>
    public const int DefaultTunnelMtu = 1480;

    /// <summary>Outer TTL of the tunnels' packets (a fixed TTL, so DF is set: path MTU discovery on).</summary>
    public const byte TunnelTtl = 64;

    public HomeAgentState(IPAddress outerAddress, string lanInterface, IEnumerable<HomeAgentTunnel>? tunnels = null, int tunnelMtu = DefaultTunnelMtu)
    {
        ArgumentNullException.ThrowIfNull(outerAddress);
        ArgumentNullException.ThrowIfNull(lanInterface);
        if (outerAddress.AddressFamily != AddressFamily.InterNetwork || outerAddress.Equals(IPAddress.Any))
        {
            throw new ArgumentException($"outer address {outerAddress} is not a unicast IPv4 address", nameof(outerAddress));
        }

        if (lanInterface.Length is 0 or > 15 || lanInterface.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
        {
            throw new ArgumentException($"LAN interface '{lanInterface}' is not a valid interface name", nameof(lanInterface));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(tunnelMtu, 68);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tunnelMtu, 65535 - 20);
        OuterAddress = outerAddress;
        LanInterface = lanInterface;
        TunnelMtu = tunnelMtu;
        Tunnels = ToDictionary(tunnels ?? []);
    }

    /// <summary>The gateway's address on the visited side: every tunnel's local end.</summary>
    public IPAddress OuterAddress { get; }

    /// <summary>The home LAN interface, where proxy ARP answers for the home addresses.</summary>
    public string LanInterface { get; }

    /// <summary>MTU of every tunnel link.</summary>
    public int TunnelMtu { get; }

    /// <summary>
    /// The userspace datapath's TUN link (made and owned by it, not by the reconciler), which
    /// carries every <see cref="HomeAgentTunnel.Shared"/> tunnel; null when there is none.
    /// </summary>
    public string? SharedLink { get; init; }

    /// <summary>The tunnels by binding id (ordinal order).</summary>
    public ImmutableSortedDictionary<string, HomeAgentTunnel> Tunnels { get; private init; }

    /// <summary>
    /// The desired state of a binding table snapshot. Without <paramref name="sharedLink"/>, only
    /// <see cref="Encapsulation.Ipip"/> bindings are carried (by classic ipip links) and the others
    /// are left out. With it, UDP bindings (and every binding when <paramref name="allShared"/>) are
    /// <see cref="HomeAgentTunnel.Shared"/>: routed into that link, encapsulated by the userspace datapath.
    /// </summary>
    public static HomeAgentState FromBindings(IPAddress outerAddress, string lanInterface, IEnumerable<Binding> bindings, int tunnelMtu = DefaultTunnelMtu,
        string? sharedLink = null, bool allShared = false)
    {
        ArgumentNullException.ThrowIfNull(bindings);
        IEnumerable<HomeAgentTunnel> tunnels = bindings
            .Where(b => sharedLink is not null || b.Encapsulation == Encapsulation.Ipip)
            .Select(b => HomeAgentTunnel.From(b) with { Shared = sharedLink is not null && (allShared || b.Encapsulation != Encapsulation.Ipip) });
        return new(outerAddress, lanInterface, tunnels, tunnelMtu) { SharedLink = sharedLink };
    }

    /// <summary>This state with <paramref name="tunnel"/> added or replacing the one of the same binding id.</summary>
    public HomeAgentState WithTunnel(HomeAgentTunnel tunnel)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        return this with { Tunnels = Tunnels.SetItem(tunnel.BindingId, tunnel) };
    }

    /// <summary>This state without the tunnel of <paramref name="bindingId"/>.</summary>
    public HomeAgentState WithoutTunnel(string bindingId) => this with { Tunnels = Tunnels.Remove(bindingId) };

    /// <summary>This state with exactly <paramref name="tunnels"/>.</summary>
    public HomeAgentState WithTunnels(IEnumerable<HomeAgentTunnel> tunnels) => this with { Tunnels = ToDictionary(tunnels) };

    public bool Equals(HomeAgentState? other) =>
        other is not null &&
        OuterAddress.Equals(other.OuterAddress) &&
        LanInterface == other.LanInterface &&
        TunnelMtu == other.TunnelMtu &&
        SharedLink == other.SharedLink &&
        Tunnels.Count == other.Tunnels.Count &&
        Tunnels.All(kv => other.Tunnels.TryGetValue(kv.Key, out HomeAgentTunnel? t) && t.Equals(kv.Value));

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(OuterAddress);
        h.Add(LanInterface, StringComparer.Ordinal);
        h.Add(TunnelMtu);
        foreach (HomeAgentTunnel t in Tunnels.Values)
        {
            h.Add(t);
        }

        return h.ToHashCode();
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"outer {OuterAddress} lan {LanInterface} mtu {TunnelMtu} tunnels [{string.Join(", ", Tunnels.Values)}]");

    private static ImmutableSortedDictionary<string, HomeAgentTunnel> ToDictionary(IEnumerable<HomeAgentTunnel> tunnels)
    {
        ArgumentNullException.ThrowIfNull(tunnels);
        var b = ImmutableSortedDictionary.CreateBuilder<string, HomeAgentTunnel>(StringComparer.Ordinal);
        foreach (HomeAgentTunnel t in tunnels)
        {
            ArgumentNullException.ThrowIfNull(t);
            if (!b.TryAdd(t.BindingId, t))
            {
                throw new ArgumentException($"two tunnels for binding {t.BindingId}", nameof(tunnels));
            }
        }

        return b.ToImmutable();
    }
}

/// <summary>Something the reconciler could not do: the operation as its <c>ip</c>/<c>sysctl</c> equivalent, with the errno.</summary>
/// <param name="BindingId">The binding it concerns, or null (forwarding, listing, an orphan).</param>
/// <param name="Message">What failed and why, e.g. "ip route replace 192.0.2.10/32 dev ma1a2b... proto 77: ENETDOWN (Network is down)".</param>
public sealed record ReconcileError(string? BindingId, string Message)
{
    public override string ToString() => BindingId is null ? Message : $"binding {BindingId}: {Message}";
}

/// <summary>A tunnel's link as it exists in the kernel.</summary>
/// <param name="Name">Interface name ("ma" + tag).</param>
/// <param name="Index">Interface index: stays the same across moves.</param>
public sealed record TunnelLink(string Name, int Index);

/// <summary>
/// What an <see cref="HomeAgentReconciler.Apply"/> actually reached. <see cref="State"/> holds
/// exactly the tunnels that are complete in the kernel (link up with its parameters, rp_filter,
/// route, proxy entry), with the care-of address the link really points at (the old one if a move
/// failed); a binding that could not be completed is not in it and has nothing left in the kernel.
/// </summary>
/// <param name="State">The reached state; null after a teardown (Apply(null)).</param>
/// <param name="Links">The link of each reached tunnel, by binding id.</param>
/// <param name="IpForwarding">net.ipv4.ip_forward as last read or set (true once any binding is in place).</param>
/// <param name="Errors">Everything that failed, in order; empty when the desired state was reached.</param>
public sealed record HomeAgentReached(
    HomeAgentState? State,
    ImmutableSortedDictionary<string, TunnelLink> Links,
    bool IpForwarding,
    ImmutableArray<ReconcileError> Errors)
{
    /// <summary>True when nothing failed and the kernel holds exactly <paramref name="desired"/>.</summary>
    public bool Reached(HomeAgentState? desired) => Errors.IsEmpty && Equals(State, desired);

    public bool Equals(HomeAgentReached? other) =>
        other is not null &&
        Equals(State, other.State) &&
        IpForwarding == other.IpForwarding &&
        Links.Count == other.Links.Count &&
        Links.All(kv => other.Links.TryGetValue(kv.Key, out TunnelLink? l) && l.Equals(kv.Value)) &&
        Errors.SequenceEqual(other.Errors);

    public override int GetHashCode() => HashCode.Combine(State, IpForwarding, Links.Count, Errors.Length);
}

/// <summary>What a <see cref="HomeAgentReconciler.Sweep()"/> removed (as <c>ip</c> commands) and what it could not.</summary>
public sealed record HomeAgentSweep(ImmutableArray<string> Removed, ImmutableArray<ReconcileError> Errors)
{
    public bool Equals(HomeAgentSweep? other) =>
        other is not null && Removed.SequenceEqual(other.Removed) && Errors.SequenceEqual(other.Errors);

    public override int GetHashCode() => HashCode.Combine(Removed.Length, Errors.Length);
}
