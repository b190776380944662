using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink;

/// <summary>
/// Parameters of an ipip (RFC 2003) link: IFLA_INFO_DATA of kind "ipip".
/// A classic link has a remote; an external (collect_md) link takes its endpoints per route
/// (<c>encap ip dst ...</c>) and has neither.
/// </summary>
public sealed record IpipParameters
{
    /// <summary>IFLA_IPTUN_LOCAL: outer source address (null: any).</summary>
    public IPAddress? Local { get; init; }

    /// <summary>IFLA_IPTUN_REMOTE: outer destination (the peer's current address).</summary>
    public IPAddress? Remote { get; init; }

    /// <summary>IFLA_IPTUN_TTL: outer TTL; 0 inherits the inner packet's.</summary>
    public byte Ttl { get; init; }

    /// <summary>IFLA_IPTUN_TOS: outer TOS; 1 inherits.</summary>
    public byte Tos { get; init; }

    /// <summary>IFLA_IPTUN_PMTUDISC: set DF on outer packets (the kernel's default). Off needs <see cref="Ttl"/> 0: a fixed TTL makes the kernel set DF anyway.</summary>
    public bool PathMtuDiscovery { get; init; } = true;

    /// <summary>IFLA_IPTUN_LINK: underlying device index (<c>dev</c>), null: any.</summary>
    public int? UnderlyingLinkIndex { get; init; }

    /// <summary>IFLA_IPTUN_COLLECT_METADATA: <c>external</c> mode.</summary>
    public bool External { get; init; }

    /// <summary>IFLA_IPTUN_FWMARK: mark for the outer route lookup.</summary>
    public uint? FwMark { get; init; }

    /// <summary>IFLA_IPTUN_ENCAP_TYPE (TUNNEL_ENCAP_FOU = 1), with the ports below: ipip inside UDP.</summary>
    public ushort? EncapType { get; init; }

    public ushort? EncapSourcePort { get; init; }

    public ushort? EncapDestinationPort { get; init; }

    /// <summary>The <c>ip link add ... type ipip</c> arguments that give these parameters.</summary>
    public string ToIpArguments()
    {
        if (External)
        {
            return "external";
        }

        var parts = new List<string>();
        if (Local is not null)
        {
            parts.Add($"local {Local}");
        }

        if (Remote is not null)
        {
            parts.Add($"remote {Remote}");
        }

        if (Ttl != 0)
        {
            parts.Add($"ttl {Ttl}");
        }

        if (Tos != 0)
        {
            parts.Add($"tos {Tos}");
        }

        parts.Add(PathMtuDiscovery ? "pmtudisc" : "nopmtudisc");
        if (UnderlyingLinkIndex is { } l)
        {
            parts.Add($"dev {l}");
        }

        if (FwMark is { } m)
        {
            parts.Add($"fwmark 0x{m:x}");
        }

        if (EncapType == 1)
        {
            parts.Add($"encap fou encap-sport {(EncapSourcePort is { } s && s != 0 ? s.ToString(System.Globalization.CultureInfo.InvariantCulture) : "auto")} encap-dport {EncapDestinationPort}");
        }

        return string.Join(' ', parts);
    }

    /// <summary>
    /// Refuses what the kernel would silently change: with a fixed outer TTL, ipip_netlink_parms sets
    /// DF whatever IFLA_IPTUN_PMTUDISC says, so "nopmtudisc" only holds with TTL 0 (inherit).
    /// ip(8) refuses the same combination ("ttl != 0 and nopmtudisc are incompatible").
    /// </summary>
    internal void Validate(string operation)
    {
        if (!External && !PathMtuDiscovery && Ttl != 0)
        {
            throw new ArgumentException(
                $"{operation}: ttl != 0 and nopmtudisc are incompatible (the kernel sets DF whenever the outer TTL is fixed); use Ttl = 0 (inherit) or PathMtuDiscovery = true",
                "parameters");
        }
    }

    /// <summary>
    /// Writes IFLA_INFO_DATA as ip(8) 6.1 does (link_iptnl.c), in its order and with its defaults:
    /// PROTO 0 (any inner protocol, which is what a tunnel made by ip has), LOCAL, REMOTE,
    /// PMTUDISC, TOS, TTL, LINK (0: none), FWMARK (0: none), then the four ENCAP_* (type 0: none).
    /// Every parameter is always sent, so a change in place (which replaces them all) leaves
    /// nothing at a kernel default; an external link gets PROTO and COLLECT_METADATA only.
    /// </summary>
    internal void Encode(ref NetlinkWriter w)
    {
        w.WriteU8(IFLA_IPTUN_PROTO, 0);
        if (External)
        {
            w.WriteFlag(IFLA_IPTUN_COLLECT_METADATA);
            return;
        }

        w.WriteAddress(IFLA_IPTUN_LOCAL, Local ?? IPAddress.Any);
        w.WriteAddress(IFLA_IPTUN_REMOTE, Remote ?? IPAddress.Any);
        w.WriteU8(IFLA_IPTUN_PMTUDISC, PathMtuDiscovery ? (byte)1 : (byte)0);
        w.WriteU8(IFLA_IPTUN_TOS, Tos);
        w.WriteU8(IFLA_IPTUN_TTL, Ttl);
        w.WriteU32(IFLA_IPTUN_LINK, (uint)(UnderlyingLinkIndex ?? 0));
        w.WriteU32(IFLA_IPTUN_FWMARK, FwMark ?? 0);
        w.WriteU16(IFLA_IPTUN_ENCAP_TYPE, EncapType ?? 0);
        w.WriteU16(IFLA_IPTUN_ENCAP_FLAGS, 0);
        w.WriteU16BigEndian(IFLA_IPTUN_ENCAP_SPORT, EncapSourcePort ?? 0);
        w.WriteU16BigEndian(IFLA_IPTUN_ENCAP_DPORT, EncapDestinationPort ?? 0);
    }

    internal static IpipParameters Decode(ReadOnlyMemory<byte> data)
    {
        var p = new IpipParameters();
        var r = new AttributeReader(data, "IFLA_INFO_DATA (ipip)");
        while (r.Next())
        {
            NetlinkAttribute a = r.Current;
            p = a.Type switch
            {
                IFLA_IPTUN_LINK => p with { UnderlyingLinkIndex = a.U32() == 0 ? null : (int)a.U32() },
                IFLA_IPTUN_LOCAL => p with { Local = NullIfAny(a.Address()) },
                IFLA_IPTUN_REMOTE => p with { Remote = NullIfAny(a.Address()) },
                IFLA_IPTUN_TTL => p with { Ttl = a.U8() },
                IFLA_IPTUN_TOS => p with { Tos = a.U8() },
                IFLA_IPTUN_PMTUDISC => p with { PathMtuDiscovery = a.U8() != 0 },
                IFLA_IPTUN_COLLECT_METADATA => p with { External = true },
                IFLA_IPTUN_FWMARK => p with { FwMark = a.U32() == 0 ? null : a.U32() },
                IFLA_IPTUN_ENCAP_TYPE => p with { EncapType = a.U16() == 0 ? null : a.U16() },
                IFLA_IPTUN_ENCAP_SPORT => p with { EncapSourcePort = a.U16BigEndian() == 0 ? null : a.U16BigEndian() },
                IFLA_IPTUN_ENCAP_DPORT => p with { EncapDestinationPort = a.U16BigEndian() == 0 ? null : a.U16BigEndian() },
                _ => p,
            };
        }

        return p;
    }

    private static IPAddress? NullIfAny(IPAddress a) => a.Equals(IPAddress.Any) ? null : a;
}

/// <summary>A network interface as the kernel reports it (RTM_NEWLINK).</summary>
public sealed record Link
{
    /// <summary>ifi_index.</summary>
    public int Index { get; init; }

    /// <summary>IFLA_IFNAME.</summary>
    public string Name { get; init; } = "";

    /// <summary>ifi_flags (IFF_UP, IFF_RUNNING, IFF_LOWER_UP, ...).</summary>
    public uint Flags { get; init; }

    /// <summary>ifi_type (ARPHRD_*: 1 ether, 768 ipip, 772 loopback, 65534 none/tun).</summary>
    public ushort DeviceType { get; init; }

    /// <summary>IFLA_MTU.</summary>
    public int Mtu { get; init; }

    /// <summary>IFLA_OPERSTATE (IF_OPER_*: 2 down, 6 up, 0 unknown).</summary>
    public byte OperState { get; init; }

    /// <summary>IFLA_INFO_KIND: "veth", "ipip", "dummy", "tun", ... (null for physical devices and loopback).</summary>
    public string? Kind { get; init; }

    /// <summary>IFLA_ADDRESS.</summary>
    public PhysicalAddress? HardwareAddress { get; init; }

    /// <summary>IFLA_LINK: the parent/peer index (veth peer, tunnel underlay); null when absent or 0 (none).</summary>
    public int? ParentIndex { get; init; }

    /// <summary>IFLA_MASTER.</summary>
    public int? MasterIndex { get; init; }

    /// <summary>IFLA_IFALIAS: free text; MobilityAgents uses it as an ownership marker on links it creates.</summary>
    public string? Alias { get; init; }

    /// <summary>Decoded IFLA_INFO_DATA for kind "ipip".</summary>
    public IpipParameters? Ipip { get; init; }

    /// <summary>Every attribute as received, unknown ones included.</summary>
    public IReadOnlyList<NetlinkAttribute> Attributes { get; init; } = [];

    public bool IsUp => (Flags & IFF_UP) != 0;

    public static Link Decode(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < SizeofIfinfomsg)
        {
            throw new NetlinkParseException("RTM_NEWLINK", $"payload of {p.Length} bytes is shorter than struct ifinfomsg ({SizeofIfinfomsg})", NetlinkMessageHeader.Size);
        }

        var link = new Link
        {
            DeviceType = BinaryPrimitives.ReadUInt16LittleEndian(p[2..]),
            Index = BinaryPrimitives.ReadInt32LittleEndian(p[4..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]),
        };
        List<NetlinkAttribute> attrs = AttributeReader.ReadAll(m.Payload[SizeofIfinfomsg..], "RTM_NEWLINK attributes");
        foreach (NetlinkAttribute a in attrs)
        {
            link = a.Type switch
            {
                IFLA_IFNAME => link with { Name = a.String() },
                IFLA_MTU => link with { Mtu = (int)a.U32() },
                IFLA_OPERSTATE => link with { OperState = a.U8() },
                IFLA_ADDRESS => link with { HardwareAddress = new PhysicalAddress(a.Payload.ToArray()) },
                IFLA_LINK => link with { ParentIndex = a.I32() == 0 ? null : a.I32() }, // 0: none (an ipip link without dev)
                IFLA_MASTER => link with { MasterIndex = a.I32() },
                IFLA_IFALIAS => link with { Alias = a.String() },
                IFLA_LINKINFO => DecodeLinkInfo(link, a.Payload),
                _ => link,
            };
        }

        return link with { Attributes = attrs };
    }

    private static Link DecodeLinkInfo(Link link, ReadOnlyMemory<byte> info)
    {
        string? kind = null;
        ReadOnlyMemory<byte>? data = null;
        var r = new AttributeReader(info, "IFLA_LINKINFO");
        while (r.Next())
        {
            if (r.Current.Type == IFLA_INFO_KIND)
            {
                kind = r.Current.String();
            }
            else if (r.Current.Type == IFLA_INFO_DATA)
            {
                data = r.Current.Payload;
            }
        }

        return link with
        {
            Kind = kind,
            Ipip = kind == "ipip" && data is { } d ? IpipParameters.Decode(d) : null,
        };
    }
}

/// <summary>Links: <c>ip link</c>.</summary>
[SupportedOSPlatform("linux")]
public sealed class LinkService
{
    private readonly RouteNetlink _h;

    internal LinkService(RouteNetlink handle) => _h = handle;

    private static void Ifinfomsg(ref NetlinkWriter w, int index = 0, uint flags = 0, uint change = 0)
    {
        Span<byte> h = w.Reserve(SizeofIfinfomsg);
        h[0] = AF_UNSPEC; // ifi_family; ifi_type stays 0
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], index);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], change);
    }

    /// <summary>IFLA_INFO_KIND as ip(8) writes it: the bare name, no NUL (the kernel's policy is NLA_STRING).</summary>
    private static void WriteKind(ref NetlinkWriter w, string kind) =>
        w.WriteBytes(IFLA_INFO_KIND, System.Text.Encoding.ASCII.GetBytes(kind));

    // The requests are built by these static methods, which the operations below and the
    // golden-byte tests (ip's own bytes, tests/MobilityAgents.Netlink.Tests/GoldenTests.cs) share.

    /// <summary>RTM_GETLINK dump of every link.</summary>
    internal static void ListRequest(ref NetlinkWriter w)
    {
        int m = w.BeginMessage(RTM_GETLINK, NLM_F_DUMP);
        Ifinfomsg(ref w);
        w.WriteU32(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
        w.EndMessage(m);
    }

    /// <summary>RTM_GETLINK of one link, by index or (index 0) by name, laid out as ip's ll_link_get: IFLA_EXT_MASK, then IFLA_IFNAME.</summary>
    internal static void GetRequest(ref NetlinkWriter w, int index, string? name)
    {
        int m = w.BeginMessage(RTM_GETLINK, 0);
        Ifinfomsg(ref w, index);
        w.WriteU32(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
        if (name is not null)
        {
            w.WriteString(IFLA_IFNAME, name);
        }

        w.EndMessage(m);
    }

    /// <summary>RTM_NEWLINK create: IFLA_IFNAME, [IFLA_MTU], [IFLA_IFALIAS], IFLA_LINKINFO { KIND, [DATA] } (no DATA when <paramref name="data"/> writes nothing).</summary>
    internal static void AddRequest(ref NetlinkWriter w, string name, string kind, string? alias, int? mtu, RequestBuilder data)
    {
        int m = w.BeginMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        Ifinfomsg(ref w);
        w.WriteString(IFLA_IFNAME, name);
        if (mtu is { } mt)
        {
            w.WriteU32(IFLA_MTU, (uint)mt);
        }

        if (alias is not null)
        {
            w.WriteString(IFLA_IFALIAS, alias);
        }

        int info = w.BeginNestedLegacy(IFLA_LINKINFO);
        WriteKind(ref w, kind);
        int d = w.BeginNestedLegacy(IFLA_INFO_DATA);
        int before = w.Length;
        data(ref w);
        if (w.Length == before)
        {
            // No data: drop the empty IFLA_INFO_DATA header again (as ip does for "type dummy").
            w.Truncate(d);
        }
        else
        {
            w.EndNested(d);
        }

        w.EndNested(info);
        w.EndMessage(m);
    }

    /// <summary>The IFLA_INFO_DATA of a veth: VETH_INFO_PEER { ifinfomsg, IFLA_IFNAME, [IFLA_NET_NS_FD] }.</summary>
    internal static void VethPeer(ref NetlinkWriter w, string peerName, int nsFd)
    {
        int peer = w.BeginNestedLegacy(VETH_INFO_PEER);
        Ifinfomsg(ref w);
        w.WriteString(IFLA_IFNAME, peerName);
        if (nsFd >= 0)
        {
            w.WriteU32(IFLA_NET_NS_FD, (uint)nsFd);
        }

        w.EndNested(peer);
    }

    /// <summary>RTM_NEWLINK of an existing ipip link by index (no IFLA_IFNAME), every parameter re-sent.</summary>
    internal static void ChangeIpipRequest(ref NetlinkWriter w, int index, IpipParameters parameters)
    {
        int m = w.BeginMessage(RTM_NEWLINK, 0);
        Ifinfomsg(ref w, index);
        int info = w.BeginNestedLegacy(IFLA_LINKINFO);
        WriteKind(ref w, "ipip");
        int data = w.BeginNestedLegacy(IFLA_INFO_DATA);
        parameters.Encode(ref w);
        w.EndNested(data);
        w.EndNested(info);
        w.EndMessage(m);
    }

    /// <summary>RTM_DELLINK by index, or (index 0) by IFLA_IFNAME.</summary>
    internal static void DeleteRequest(ref NetlinkWriter w, int index, string? name)
    {
        int m = w.BeginMessage(RTM_DELLINK, 0);
        Ifinfomsg(ref w, index);
        if (name is not null)
        {
            w.WriteString(IFLA_IFNAME, name);
        }

        w.EndMessage(m);
    }

    /// <summary>RTM_NEWLINK changing ifi_flags under the mask <paramref name="change"/>.</summary>
    internal static void SetFlagsRequest(ref NetlinkWriter w, int index, uint flags, uint change)
    {
        int m = w.BeginMessage(RTM_NEWLINK, 0);
        Ifinfomsg(ref w, index, flags, change);
        w.EndMessage(m);
    }

    /// <summary>RTM_NEWLINK with IFLA_MTU.</summary>
    internal static void SetMtuRequest(ref NetlinkWriter w, int index, int mtu)
    {
        int m = w.BeginMessage(RTM_NEWLINK, 0);
        Ifinfomsg(ref w, index);
        w.WriteU32(IFLA_MTU, (uint)mtu);
        w.EndMessage(m);
    }

    /// <summary>Every link. Equivalent to: <c>ip -d link show</c>.</summary>
    public List<Link> List() => _h.Dump(ListRequest, Link.Decode, () => "ip -d link show");

    /// <summary>One link by name, or null. Equivalent to: <c>ip -d link show dev NAME</c>.</summary>
    public Link? Get(string name)
    {
        ValidateName(name);
        return GetBy(0, name, () => $"ip -d link show dev {name}");
    }

    /// <summary>One link by index, or null. Equivalent to: <c>ip -d link show</c> of that index.</summary>
    public Link? Get(int index) => GetBy(index, null, () => $"ip -d link show (index {index})");

    private Link? GetBy(int index, string? name, Func<string> describe)
    {
        try
        {
            List<NetlinkMessage> r = _h.Execute((ref NetlinkWriter w) => GetRequest(ref w, index, name), describe);
            return r.Count > 0 ? Link.Decode(r[0]) : null;
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
        {
            return null;
        }
    }

    /// <summary>The index of a link by name; throws if there is none.</summary>
    public int IndexOf(string name) => Get(name)?.Index
        ?? throw new NetlinkException($"ip link show dev {name}", Errno.ENODEV, $"no link named {name} in network namespace {_h.Namespace.Name}");

    /// <summary>Creates a dummy link. Equivalent to: <c>ip link add NAME type dummy</c>.</summary>
    public void AddDummy(string name, string? alias = null) =>
        Add(name, "dummy", alias, null, (ref NetlinkWriter _) => { }, () => $"ip link add {name} type dummy");

    /// <summary>
    /// Creates a veth pair; the peer can be created directly in another namespace.
    /// Equivalent to: <c>ip link add NAME type veth peer name PEER [netns NS]</c>.
    /// </summary>
    public void AddVeth(string name, string peerName, NetworkNamespace? peerNamespace = null, string? alias = null)
    {
        ValidateName(peerName);
        int nsFd = peerNamespace is { IsCurrent: false } ? OpenNsFdForPeer(peerNamespace) : -1;
        try
        {
            Add(name, "veth", alias, null,
                (ref NetlinkWriter w) => VethPeer(ref w, peerName, nsFd),
                () => $"ip link add {name} type veth peer name {peerName}" + (peerNamespace is { IsCurrent: false } ? $" netns {peerNamespace.Name}" : ""));
        }
        finally
        {
            if (nsFd >= 0)
            {
                Tmds.Linux.LibC.close(nsFd);
            }
        }
    }

    /// <summary>
    /// Creates an ipip link. Equivalent to: <c>ip link add NAME type ipip local L remote R ttl T tos S pmtudisc dev D</c>
    /// (or <c>ip link add NAME type ipip external</c>).
    /// </summary>
    public void AddIpip(string name, IpipParameters parameters, int? mtu = null, string? alias = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Func<string> describe = () => $"ip link add {name}{(mtu is { } m ? $" mtu {m}" : "")} type ipip {parameters.ToIpArguments()}";
        parameters.Validate(describe());
        Add(name, "ipip", alias, mtu, (ref NetlinkWriter w) => parameters.Encode(ref w), describe);
    }

    /// <summary>
    /// Changes an existing ipip link's parameters in place (the link, its index, addresses and routes
    /// stay; the kernel rehashes the tunnel). The kernel replaces every parameter, so pass them all:
    /// <c>link.Ipip with { Remote = ... }</c>. Equivalent to: <c>ip link set dev NAME type ipip remote R ...</c>.
    /// </summary>
    public void ChangeIpip(int index, IpipParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        parameters.Validate($"ip link set dev {NameForMessage(index)} type ipip {parameters.ToIpArguments()}");
        _h.Execute(
            (ref NetlinkWriter w) => ChangeIpipRequest(ref w, index, parameters),
            () => $"ip link set dev {NameForMessage(index)} type ipip {parameters.ToIpArguments()}");
    }

    /// <summary>Re-points a classic ipip link at a new remote, keeping its other parameters. Equivalent to: <c>ip link set dev NAME type ipip remote R</c>.</summary>
    public void SetIpipRemote(string name, IPAddress remote)
    {
        Link link = Get(name) ?? throw new NetlinkException($"ip link set dev {name} type ipip remote {remote}", Errno.ENODEV, $"no link named {name}");
        IpipParameters p = link.Ipip ?? throw new NetlinkException($"ip link set dev {name} type ipip remote {remote}", Errno.EINVAL, $"{name} is a {link.Kind ?? "non-tunnel"} link, not ipip");
        ChangeIpip(link.Index, p with { Remote = remote });
    }

    private void Add(string name, string kind, string? alias, int? mtu, RequestBuilder data, Func<string> describe)
    {
        ValidateName(name);
        _h.Execute((ref NetlinkWriter w) => AddRequest(ref w, name, kind, alias, mtu, data), describe);

        if (alias is not null)
        {
            // The kernel ignores IFLA_IFALIAS in a create request (rtnl_create_link does not apply
            // it, only do_setlink does), so mark the new link with a separate
            // `ip link set dev NAME alias TEXT`. A link that cannot be marked is not left behind.
            try
            {
                SetAlias(IndexOf(name), alias);
            }
            catch
            {
                Delete(name);
                throw;
            }
        }
    }

    /// <summary>Deletes a link; false if there was none. Equivalent to: <c>ip link del dev NAME</c>.</summary>
    public bool Delete(string name)
    {
        ValidateName(name);
        return _h.ExecuteDelete((ref NetlinkWriter w) => DeleteRequest(ref w, 0, name), () => $"ip link del dev {name}");
    }

    /// <summary>Deletes a link by index; false if there was none. Equivalent to: <c>ip link del dev NAME</c>.</summary>
    public bool Delete(int index) => _h.ExecuteDelete(
        (ref NetlinkWriter w) => DeleteRequest(ref w, index, null),
        () => $"ip link del dev {NameForMessage(index)}");

    /// <summary>Brings a link up. Equivalent to: <c>ip link set dev NAME up</c>.</summary>
    public void SetUp(int index) => SetFlags(index, IFF_UP, IFF_UP, "up");

    /// <summary>Brings a link down. Equivalent to: <c>ip link set dev NAME down</c>.</summary>
    public void SetDown(int index) => SetFlags(index, 0, IFF_UP, "down");

    private void SetFlags(int index, uint flags, uint change, string what) => _h.Execute(
        (ref NetlinkWriter w) => SetFlagsRequest(ref w, index, flags, change),
        () => $"ip link set dev {NameForMessage(index)} {what}");

    /// <summary>Sets the MTU. Equivalent to: <c>ip link set dev NAME mtu N</c>.</summary>
    public void SetMtu(int index, int mtu) => _h.Execute(
        (ref NetlinkWriter w) => SetMtuRequest(ref w, index, mtu),
        () => $"ip link set dev {NameForMessage(index)} mtu {mtu}");

    /// <summary>Sets the alias (our ownership marker). Equivalent to: <c>ip link set dev NAME alias TEXT</c>.</summary>
    public void SetAlias(int index, string alias) => _h.Execute(
        (ref NetlinkWriter w) =>
        {
            int m = w.BeginMessage(RTM_NEWLINK, 0);
            Ifinfomsg(ref w, index);
            w.WriteString(IFLA_IFALIAS, alias);
            w.EndMessage(m);
        },
        () => $"ip link set dev {NameForMessage(index)} alias \"{alias}\"");

    /// <summary>Moves a link into another namespace. Equivalent to: <c>ip link set dev NAME netns NS</c>.</summary>
    public void SetNamespace(int index, NetworkNamespace target)
    {
        ArgumentNullException.ThrowIfNull(target);
        int fd = OpenNsFdForPeer(target);
        try
        {
            _h.Execute(
                (ref NetlinkWriter w) =>
                {
                    int m = w.BeginMessage(RTM_NEWLINK, 0);
                    Ifinfomsg(ref w, index);
                    w.WriteU32(IFLA_NET_NS_FD, (uint)fd);
                    w.EndMessage(m);
                },
                () => $"ip link set dev {NameForMessage(index)} netns {target.Name}");
        }
        finally
        {
            Tmds.Linux.LibC.close(fd);
        }
    }

    private static int OpenNsFdForPeer(NetworkNamespace ns) =>
        ns.Run(static () => OpenSelf());

    private static unsafe int OpenSelf()
    {
        byte* p = stackalloc byte[] { (byte)'/', (byte)'p', (byte)'r', (byte)'o', (byte)'c', (byte)'/', (byte)'t', (byte)'h', (byte)'r', (byte)'e', (byte)'a', (byte)'d', (byte)'-', (byte)'s', (byte)'e', (byte)'l', (byte)'f', (byte)'/', (byte)'n', (byte)'s', (byte)'/', (byte)'n', (byte)'e', (byte)'t', 0 };
        int fd = Tmds.Linux.LibC.open(p, Tmds.Linux.LibC.O_RDONLY | Tmds.Linux.LibC.O_CLOEXEC);
        return fd >= 0 ? fd : throw new NetlinkSocketException("open /proc/thread-self/ns/net", Tmds.Linux.LibC.errno);
    }

    /// <summary>How messages name a link known only by index (no kernel round trip on the error path).</summary>
    private static string NameForMessage(int index) => $"(ifindex {index})";

    /// <summary>IFNAMSIZ is 16 including the NUL; names cannot contain '/', ':' or whitespace, nor be "." or "..".</summary>
    public static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 15 || name is "." or ".." ||
            name.Any(c => c == '/' || c == ':' || char.IsWhiteSpace(c) || c > 127))
        {
            throw new ArgumentException($"invalid interface name '{name}': 1-15 ASCII characters, no '/', ':' or spaces", nameof(name));
        }
    }
}
