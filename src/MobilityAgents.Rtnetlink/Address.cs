using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink;

/// <summary>An interface address (RTM_NEWADDR): <c>LOCAL/PREFIX</c>, or <c>local LOCAL peer PEER</c> on a point-to-point link.</summary>
public sealed record AddressEntry
{
    /// <summary>ifa_index.</summary>
    public int InterfaceIndex { get; init; }

    /// <summary>IFA_LOCAL: the address itself.</summary>
    public IPAddress Local { get; init; } = IPAddress.Any;

    /// <summary>ifa_prefixlen (32 for a point-to-point peer address).</summary>
    public byte PrefixLength { get; init; } = 32;

    /// <summary>IFA_ADDRESS when it differs from IFA_LOCAL: the other end of a point-to-point link.</summary>
    public IPAddress? Peer { get; init; }

    /// <summary>IFA_BROADCAST.</summary>
    public IPAddress? Broadcast { get; init; }

    /// <summary>ifa_scope (RT_SCOPE_*).</summary>
    public byte Scope { get; init; }

    /// <summary>ifa_flags / IFA_FLAGS (IFA_F_*).</summary>
    public uint Flags { get; init; }

    /// <summary>IFA_LABEL.</summary>
    public string? Label { get; init; }

    /// <summary>IFA_PROTO: who installed the address (kernel 5.18+); an ownership marker where supported.</summary>
    public byte? Protocol { get; init; }

    /// <summary>Every attribute as received (empty for entries built by the caller).</summary>
    public IReadOnlyList<NetlinkAttribute> Attributes { get; init; } = [];

    internal byte Family => Local.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;

    /// <summary>The address as <c>ip addr</c> writes it: <c>192.0.2.1/24</c> or <c>10.0.0.1 peer 10.0.0.2/32</c>.</summary>
    public string ToIpArguments() => Peer is null ? $"{Local}/{PrefixLength}" : $"{Local} peer {Peer}/{PrefixLength}";

    public static AddressEntry Decode(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < SizeofIfaddrmsg)
        {
            throw new NetlinkParseException("RTM_NEWADDR", $"payload of {p.Length} bytes is shorter than struct ifaddrmsg ({SizeofIfaddrmsg})", NetlinkMessageHeader.Size);
        }

        byte prefix = p[1];
        uint flags = p[2];
        byte scope = p[3];
        int index = BinaryPrimitives.ReadInt32LittleEndian(p[4..]);
        IPAddress? local = null, address = null, broadcast = null;
        string? label = null;
        byte? proto = null;
        List<NetlinkAttribute> attrs = AttributeReader.ReadAll(m.Payload[SizeofIfaddrmsg..], "RTM_NEWADDR attributes");
        foreach (NetlinkAttribute a in attrs)
        {
            switch (a.Type)
            {
                case IFA_LOCAL: local = a.Address(); break;
                case IFA_ADDRESS: address = a.Address(); break;
                case IFA_BROADCAST: broadcast = a.Address(); break;
                case IFA_LABEL: label = a.String(); break;
                case IFA_FLAGS: flags = a.U32(); break;
                case IFA_PROTO: proto = a.U8(); break;
                default: break;
            }
        }

        // IPv4 always has IFA_LOCAL; IFA_ADDRESS differs from it only for a point-to-point peer.
        IPAddress l = local ?? address ?? throw new NetlinkParseException("RTM_NEWADDR", "neither IFA_LOCAL nor IFA_ADDRESS present", NetlinkMessageHeader.Size + SizeofIfaddrmsg);
        return new AddressEntry
        {
            InterfaceIndex = index,
            Local = l,
            PrefixLength = prefix,
            Peer = address is not null && local is not null && !address.Equals(local) ? address : null,
            Broadcast = broadcast,
            Scope = scope,
            Flags = flags,
            Label = label,
            Protocol = proto,
            Attributes = attrs,
        };
    }

    internal void Encode(ref NetlinkWriter w, ushort type, ushort flags)
    {
        int m = w.BeginMessage(type, flags);
        Span<byte> h = w.Reserve(SizeofIfaddrmsg);
        h[0] = Family;
        h[1] = PrefixLength;
        h[2] = (byte)(Flags & 0xff);
        h[3] = Scope;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], InterfaceIndex);
        // Same order as ip(8): IFA_LOCAL, then IFA_ADDRESS (the peer, or the local address again).
        w.WriteAddress(IFA_LOCAL, Local);
        w.WriteAddress(IFA_ADDRESS, Peer ?? Local);
        if (Broadcast is not null)
        {
            w.WriteAddress(IFA_BROADCAST, Broadcast);
        }

        if (Label is not null)
        {
            w.WriteString(IFA_LABEL, Label);
        }

        if (Flags > 0xff)
        {
            w.WriteU32(IFA_FLAGS, Flags);
        }

        if (Protocol is { } proto)
        {
            w.WriteU8(IFA_PROTO, proto);
        }

        w.EndMessage(m);
    }
}

/// <summary>Addresses: <c>ip addr</c>.</summary>
[SupportedOSPlatform("linux")]
public sealed class AddressService
{
    private readonly RouteNetlink _h;

    internal AddressService(RouteNetlink handle) => _h = handle;

    /// <summary>Adds an address; EEXIST if it is there. Equivalent to: <c>ip addr add ADDR dev IF</c>.</summary>
    public void Add(AddressEntry address)
    {
        ArgumentNullException.ThrowIfNull(address);
        _h.Execute((ref NetlinkWriter w) => address.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL),
            () => $"ip addr add {address.ToIpArguments()} dev (ifindex {address.InterfaceIndex})");
    }

    /// <summary>Adds or updates an address. Equivalent to: <c>ip addr replace ADDR dev IF</c>.</summary>
    public void Replace(AddressEntry address)
    {
        ArgumentNullException.ThrowIfNull(address);
        _h.Execute((ref NetlinkWriter w) => address.Encode(ref w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE),
            () => $"ip addr replace {address.ToIpArguments()} dev (ifindex {address.InterfaceIndex})");
    }

    /// <summary>Deletes an address; false if it was not there. Equivalent to: <c>ip addr del ADDR dev IF</c>.</summary>
    public bool Delete(AddressEntry address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return _h.ExecuteDelete((ref NetlinkWriter w) => address.Encode(ref w, RTM_DELADDR, 0),
            () => $"ip addr del {address.ToIpArguments()} dev (ifindex {address.InterfaceIndex})");
    }

    /// <summary>RTM_GETADDR dump of IPv4 addresses: an ifaddrmsg with the family and (strict checking lets the kernel filter by it) ifa_index, as ip(8).</summary>
    internal static void ListRequest(ref NetlinkWriter w, int? interfaceIndex)
    {
        int m = w.BeginMessage(RTM_GETADDR, NLM_F_DUMP);
        Span<byte> h = w.Reserve(SizeofIfaddrmsg);
        h[0] = AF_INET;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], interfaceIndex ?? 0);
        w.EndMessage(m);
    }

    /// <summary>IPv4 addresses, of one interface or all. Equivalent to: <c>ip -4 addr show [dev IF]</c>.</summary>
    public List<AddressEntry> List(int? interfaceIndex = null) => _h.Dump(
        (ref NetlinkWriter w) => ListRequest(ref w, interfaceIndex),
        AddressEntry.Decode,
        () => interfaceIndex is { } i ? $"ip -4 addr show dev (ifindex {i})" : "ip -4 addr show");
}
