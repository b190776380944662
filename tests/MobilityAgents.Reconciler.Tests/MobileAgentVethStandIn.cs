using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>
/// TESTS ONLY: a veth pair standing in for the mobile agent's ipip link, on hosts whose kernel has
/// no ipip module, so that the reconciler's address, rules, routes and nftables table can be tested
/// there with real traffic. The "tunnel" is a plain link to the peer namespace (the home agent's
/// side): no outer header, and its endpoints are only remembered, so a move changes nothing in the
/// kernel. The product never uses it (the reconciler's public constructor always makes ipip links);
/// the kernel-VM tests, tagged Kernel=ipip, cover the real link.
/// </summary>
internal sealed class VethStandInForTestsOnly(NetworkNamespace peerNamespace, Action<string>? peerCreated = null) : MobileTunnelDevice
{
    private readonly Dictionary<int, IpipParameters> _endpoints = [];

    /// <summary>The peer end's name in the peer namespace: "p" + the tunnel's name.</summary>
    public static string PeerName(string name) => "p" + name;

    public override bool IsKind(Link link) => link.Kind == "veth";

    public override bool Matches(Link link, IpipParameters want) =>
        IsKind(link) && _endpoints.TryGetValue(link.Index, out IpipParameters? p) && p.Equals(want);

    public override bool Collides(Link link, IpipParameters want) => false;

    public override IpipParameters? ParametersOf(Link link) => _endpoints.GetValueOrDefault(link.Index);

    public override string CreateCommand(string name, IpipParameters parameters, int mtu, string alias) =>
        $"ip link add {name} mtu {mtu} type veth peer name {PeerName(name)} netns {peerNamespace.Name} (stand-in for: type ipip {parameters.ToIpArguments()}); ip link set dev {name} alias \"{alias}\"";

    public override int Create(RouteNetlink handle, string name, IpipParameters parameters, int mtu, string alias)
    {
        handle.Links.AddVeth(name, PeerName(name), peerNamespace, alias);
        int index = handle.Links.IndexOf(name);
        handle.Links.SetMtu(index, mtu);
        using (RouteNetlink peer = RouteNetlink.Open(peerNamespace))
        {
            peer.Links.SetUp(peer.Links.IndexOf(PeerName(name)));
        }

        _endpoints[index] = parameters;
        peerCreated?.Invoke(PeerName(name));
        return index;
    }

    public override string ChangeCommand(string name, IpipParameters parameters) =>
        $"(stand-in, nothing in the kernel) ip link set dev {name} type ipip {parameters.ToIpArguments()}";

    public override void Change(RouteNetlink handle, int index, IpipParameters parameters) => _endpoints[index] = parameters;
}
