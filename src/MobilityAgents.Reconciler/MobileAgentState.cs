using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MobilityAgents.Core;

namespace MobilityAgents.Reconciler;

/// <summary>
/// What the mobile agent's (the laptop's) kernel should look like: the recipe's laptop side,
/// steps 1-5. A classic ipip link <see cref="TunnelName"/> from <see cref="CareOfAddress"/> to
/// <see cref="HomeAgentAddress"/> carrying <see cref="HomeAddress"/>/32, a policy rule sending
/// traffic from the home address to <see cref="Ownership.MobileTable"/> whose default route is the
/// tunnel, and the talk's options: traffic carrying <see cref="Ownership.FwMarkBit"/> through the
/// tunnel (<see cref="FwMarkSelection"/>), locally generated TCP to <see cref="TcpPorts"/> marked
/// and source-NATed to the home address (nftables), and the whole <see cref="HomePrefix"/> through
/// the tunnel with the home agent's outer address pinned via <see cref="VisitedGateway"/>.
/// <para>
/// Immutable and compared by value (the ports as a set), so "nothing changed" is one comparison.
/// A move is a new <see cref="CareOfAddress"/> (and usually a new <see cref="VisitedGateway"/>):
/// <c>this with { CareOfAddress = ..., VisitedGateway = ... }</c>. <see cref="Validate"/> lists
/// what is wrong with a state, naming the property; the reconciler refuses an invalid state
/// before touching the kernel.
/// </para>
/// </summary>
public sealed record MobileAgentState
{
    /// <summary>1500 (Ethernet) less the 20-byte outer IPv4 header: the recipe's MTU.</summary>
    public const int DefaultTunnelMtu = 1480;

    /// <summary>The tunnel link's default name: <see cref="Ownership.LinkNamePrefix"/> + "-tun0".</summary>
    public const string DefaultTunnelName = Ownership.LinkNamePrefix + "-tun0";

    /// <summary>Outer TTL of the tunnel's packets (a fixed TTL: the kernel sets DF, path MTU discovery on).</summary>
    public const byte TunnelTtl = 64;

    /// <summary>
    /// IFLA_IFALIAS of the mobile agent's tunnel link: <see cref="Ownership.LinkAliasPrefix"/> +
    /// "mobile". Exact match, so the mobile agent never takes a home agent's binding link
    /// ("mobilityagents:BINDING") for its own.
    /// </summary>
    public const string TunnelAlias = Ownership.LinkAliasPrefix + "mobile";

    /// <summary>Priority of <c>from HOME lookup MobileTable</c>: the first of our band.</summary>
    public const uint HomeAddressRulePriority = Ownership.RulePriorityFirst;

    /// <summary>Priority of <c>fwmark BIT/BIT lookup MobileTable</c>: a gap of 10 after the first, room to insert between.</summary>
    public const uint FwMarkRulePriority = Ownership.RulePriorityFirst + 10;

    /// <summary>
    /// net.ipv4.conf.TUNNEL.rp_filter: loose (2). The kernel uses the larger of "all" and the link's
    /// value, so 2 is loose whatever "all" says. Strict filtering would drop the replies of
    /// source-NATed connections (<see cref="TcpPorts"/>): their destination is un-NATed to the
    /// visited address before routing, and the route back to the peer from the visited address is
    /// not the tunnel. What arrives on the tunnel comes from the one home agent it points at.
    /// </summary>
    public const int TunnelRpFilter = 2;

    public MobileAgentState(IPAddress careOfAddress, IPAddress homeAgentAddress, IPAddress homeAddress, IPNetwork homePrefix)
    {
        CareOfAddress = careOfAddress ?? throw new ArgumentNullException(nameof(careOfAddress));
        HomeAgentAddress = homeAgentAddress ?? throw new ArgumentNullException(nameof(homeAgentAddress));
        HomeAddress = homeAddress ?? throw new ArgumentNullException(nameof(homeAddress));
        HomePrefix = homePrefix;
    }

    /// <summary>The laptop's address on the visited network: the tunnel's local end.</summary>
    public IPAddress CareOfAddress { get; init; }

    /// <summary>The home agent's outer address: the tunnel's remote end.</summary>
    public IPAddress HomeAgentAddress { get; init; }

    /// <summary>The laptop's address on the home network; lives on the tunnel link as a /32.</summary>
    public IPAddress HomeAddress { get; init; }

    /// <summary>The home network; must contain <see cref="HomeAddress"/>.</summary>
    public IPNetwork HomePrefix { get; init; }

    /// <summary>MTU of the tunnel link.</summary>
    public int TunnelMtu { get; init; } = DefaultTunnelMtu;

    /// <summary>Name of the tunnel link; must start with <see cref="Ownership.LinkNamePrefix"/>.</summary>
    public string TunnelName { get; init; } = DefaultTunnelName;

    /// <summary>
    /// The recipe's step 5: <c>HomePrefix dev TUNNEL src HomeAddress</c> in the main table, after
    /// pinning <c>HomeAgentAddress/32 via VisitedGateway</c> (or the tunnel would carry itself).
    /// Needs <see cref="VisitedGateway"/>.
    /// </summary>
    public bool HomePrefixThroughTunnel { get; init; }

    /// <summary>The visited network's router, for the pin route; re-pinned on every move.</summary>
    public IPAddress? VisitedGateway { get; init; }

    /// <summary>
    /// The recipe's step 4: traffic carrying <see cref="Ownership.FwMarkBit"/> (marked by anyone)
    /// goes through the tunnel: <c>ip rule add fwmark BIT/BIT lookup MobileTable</c>.
    /// </summary>
    public bool FwMarkSelection { get; init; }

    /// <summary>
    /// Locally generated TCP to these destination ports goes through the tunnel with the home
    /// address as its source: an nftables table marks it on the output path (a route chain, so the
    /// packet is routed again after the mark) and source-NATs what leaves through the tunnel. Implies
    /// the fwmark rule. Empty: no nftables table.
    /// </summary>
    public ImmutableSortedSet<ushort> TcpPorts { get; init; } = [];

    /// <summary>
    /// The tunnel link is the userspace datapath's TUN device (made and owned by the agent's
    /// datapath, which encapsulates): the reconciler only recognises it (kind "tun", our alias),
    /// never creates or re-points it; addresses, rules, routes and nftables are as for ipip.
    /// </summary>
    public bool UserspaceTunnel { get; init; }

    /// <summary>ipip-in-UDP (laptop behind NAT): the home agent's UDP port; 0 = plain ipip.</summary>
    public ushort UdpPort { get; init; }

    /// <summary>ipip-in-UDP: the token of this binding's keepalives.</summary>
    public ulong KeepaliveToken { get; init; }

    /// <summary>ipip-in-UDP: the 32-byte key that authenticates this binding's keepalives.</summary>
    public ImmutableArray<byte> KeepaliveKey { get; init; } = [];

    /// <summary>ipip-in-UDP: how often keepalives go (keeps the NAT mapping open).</summary>
    public TimeSpan KeepaliveInterval { get; init; }

    /// <summary>True when the fwmark rule is installed: <see cref="FwMarkSelection"/>, or ports to mark.</summary>
    public bool NeedsFwMarkRule => FwMarkSelection || !TcpPorts.IsEmpty;

    /// <summary>
    /// True when the nftables table is installed: whenever traffic is selected by mark (ports or
    /// <see cref="FwMarkSelection"/>), its source must become the home address.
    /// </summary>
    public bool NeedsNftables => NeedsFwMarkRule;

    /// <summary>The ipip link's parameters: local = care-of, remote = home agent, ttl 64, pmtudisc.</summary>
    public Rtnetlink.IpipParameters TunnelParameters => new()
    {
        Local = CareOfAddress,
        Remote = HomeAgentAddress,
        Ttl = TunnelTtl,
        Tos = 0,
        PathMtuDiscovery = true,
    };

    /// <summary>What is wrong with this state, each naming the property; empty when it can be applied.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        void Unicast(string key, IPAddress? a)
        {
            if (a is null)
            {
                problems.Add($"{key}: required");
            }
            else if (!IsUnicastIpv4(a))
            {
                problems.Add($"{key}: {a} is not a unicast IPv4 address");
            }
        }

        Unicast(nameof(CareOfAddress), CareOfAddress);
        Unicast(nameof(HomeAgentAddress), HomeAgentAddress);
        Unicast(nameof(HomeAddress), HomeAddress);
        if (HomePrefix.BaseAddress is null || HomePrefix.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            problems.Add($"{nameof(HomePrefix)}: {HomePrefix} is not an IPv4 prefix");
        }
        else if (HomeAddress is not null && !HomePrefix.Contains(HomeAddress))
        {
            problems.Add($"{nameof(HomePrefix)}: {HomePrefix} does not contain the home address {HomeAddress}");
        }

        if (CareOfAddress is not null && CareOfAddress.Equals(HomeAgentAddress))
        {
            problems.Add($"{nameof(CareOfAddress)}: {CareOfAddress} is the home agent's own address");
        }

        if (CareOfAddress is not null && CareOfAddress.Equals(HomeAddress))
        {
            problems.Add($"{nameof(CareOfAddress)}: {CareOfAddress} is the home address (the laptop is at home: no tunnel)");
        }

        if (TunnelMtu is < 68 or > 65535 - 20)
        {
            problems.Add($"{nameof(TunnelMtu)}: {TunnelMtu} is outside 68-65515");
        }

        if (TunnelName is null || TunnelName.Length is 0 or > 15 || TunnelName is "." or ".." ||
            TunnelName.Any(c => c is '/' or ':' or '"' or '\'' or '\\' || char.IsWhiteSpace(c) || c > 127 || char.IsControl(c)))
        {
            problems.Add($"{nameof(TunnelName)}: '{TunnelName}' is not a valid interface name (1-15 ASCII characters, no '/', ':', quotes or spaces)");
        }
        else if (!TunnelName.StartsWith(Ownership.LinkNamePrefix, StringComparison.Ordinal))
        {
            problems.Add($"{nameof(TunnelName)}: '{TunnelName}' does not start with '{Ownership.LinkNamePrefix}' (the ownership prefix of our links)");
        }

        if (HomePrefixThroughTunnel)
        {
            if (VisitedGateway is null)
            {
                problems.Add($"{nameof(VisitedGateway)}: required with {nameof(HomePrefixThroughTunnel)} (the home agent's address is pinned via it)");
            }
            else
            {
                Unicast(nameof(VisitedGateway), VisitedGateway);
            }
        }
        else if (VisitedGateway is not null && !IsUnicastIpv4(VisitedGateway))
        {
            problems.Add($"{nameof(VisitedGateway)}: {VisitedGateway} is not a unicast IPv4 address");
        }

        if (TcpPorts is null)
        {
            problems.Add($"{nameof(TcpPorts)}: required (empty for none)");
        }
        else if (TcpPorts.Contains(0))
        {
            problems.Add($"{nameof(TcpPorts)}: port 0 is not a destination port");
        }

        return problems;
    }

    public bool Equals(MobileAgentState? other) =>
        other is not null &&
        CareOfAddress.Equals(other.CareOfAddress) &&
        HomeAgentAddress.Equals(other.HomeAgentAddress) &&
        HomeAddress.Equals(other.HomeAddress) &&
        HomePrefix.Equals(other.HomePrefix) &&
        TunnelMtu == other.TunnelMtu &&
        string.Equals(TunnelName, other.TunnelName, StringComparison.Ordinal) &&
        HomePrefixThroughTunnel == other.HomePrefixThroughTunnel &&
        Equals(VisitedGateway, other.VisitedGateway) &&
        FwMarkSelection == other.FwMarkSelection &&
        UserspaceTunnel == other.UserspaceTunnel &&
        UdpPort == other.UdpPort &&
        KeepaliveToken == other.KeepaliveToken &&
        KeepaliveInterval == other.KeepaliveInterval &&
        KeepaliveKey.AsSpan().SequenceEqual(other.KeepaliveKey.AsSpan()) &&
        (ReferenceEquals(TcpPorts, other.TcpPorts) || (TcpPorts is not null && other.TcpPorts is not null && TcpPorts.SetEquals(other.TcpPorts)));

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(CareOfAddress);
        h.Add(HomeAgentAddress);
        h.Add(HomeAddress);
        h.Add(HomePrefix);
        h.Add(TunnelMtu);
        h.Add(TunnelName, StringComparer.Ordinal);
        h.Add(HomePrefixThroughTunnel);
        h.Add(VisitedGateway);
        h.Add(FwMarkSelection);
        h.Add(UserspaceTunnel);
        h.Add(UdpPort);
        h.Add(KeepaliveToken);
        foreach (ushort p in TcpPorts ?? [])
        {
            h.Add(p);
        }

        return h.ToHashCode();
    }

    public override string ToString()
    {
        var s = string.Create(CultureInfo.InvariantCulture,
            $"{TunnelName} {CareOfAddress} -> {HomeAgentAddress} home {HomeAddress} ({HomePrefix}) mtu {TunnelMtu}");
        if (HomePrefixThroughTunnel)
        {
            s += $" prefix-through-tunnel via {VisitedGateway}";
        }

        if (FwMarkSelection)
        {
            s += " fwmark";
        }

        if (UserspaceTunnel)
        {
            s += " userspace";
        }

        if (UdpPort != 0)
        {
            s += $" udp {HomeAgentAddress}:{UdpPort}";
        }

        if (TcpPorts is { IsEmpty: false })
        {
            s += " tcp-ports " + string.Join(',', TcpPorts);
        }

        return s;
    }

    internal static bool IsUnicastIpv4(IPAddress a)
    {
        if (a.AddressFamily != AddressFamily.InterNetwork)
        {
            return false;
        }

        byte[] b = a.GetAddressBytes();
        return b[0] is not (0 or 127) && b[0] < 224 && !a.Equals(IPAddress.Broadcast);
    }
}

/// <summary>
/// Something the mobile agent's reconciler could not do.
/// </summary>
/// <param name="Operation">The operation as its <c>ip</c> / <c>nft</c> / <c>sysctl</c> equivalent.</param>
/// <param name="Errno">The kernel's errno, when the failure had one.</param>
/// <param name="Message">What failed and why, e.g. "ip route replace 192.0.2.1/32 via 10.1.0.1 proto 77: ENETUNREACH (Network is unreachable)".</param>
public sealed record MobileAgentError(string Operation, int? Errno, string Message)
{
    public override string ToString() => Message;
}

/// <summary>
/// What a <see cref="MobileAgentReconciler.Apply"/> actually reached.
/// </summary>
/// <param name="State">
/// The state the kernel holds completely: the desired one when every step succeeded; after a
/// failed step that was rolled back, the previously reached state if the kernel still holds it
/// (else null); null after a teardown (Apply(null)).
/// </param>
/// <param name="TunnelIndex">The tunnel link's ifindex (the same across moves), or null.</param>
/// <param name="Errors">Everything that failed, in order (rollback steps included); empty when the desired state was reached.</param>
public sealed record MobileAgentReached(MobileAgentState? State, int? TunnelIndex, ImmutableArray<MobileAgentError> Errors)
{
    /// <summary>True when nothing failed and the kernel holds exactly <paramref name="desired"/>.</summary>
    public bool Reached(MobileAgentState? desired) => Errors.IsEmpty && Equals(State, desired);

    public bool Equals(MobileAgentReached? other) =>
        other is not null && Equals(State, other.State) && TunnelIndex == other.TunnelIndex && Errors.SequenceEqual(other.Errors);

    public override int GetHashCode() => HashCode.Combine(State, TunnelIndex, Errors.Length);
}

/// <summary>What a <see cref="MobileAgentReconciler.Sweep"/> removed (as <c>ip</c>/<c>nft</c> commands) and what it could not.</summary>
public sealed record MobileAgentSweep(ImmutableArray<string> Removed, ImmutableArray<MobileAgentError> Errors)
{
    public bool Equals(MobileAgentSweep? other) =>
        other is not null && Removed.SequenceEqual(other.Removed) && Errors.SequenceEqual(other.Errors);

    public override int GetHashCode() => HashCode.Combine(Removed.Length, Errors.Length);
}
