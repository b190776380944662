using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink;

/// <summary>A neighbour entry (RTM_NEWNEIGH): an ARP entry, or with <see cref="Proxy"/> a proxy-ARP entry.</summary>
public sealed record NeighbourEntry
{
    /// <summary>ndm_ifindex.</summary>
    public int InterfaceIndex { get; init; }

    /// <summary>NDA_DST.</summary>
    public IPAddress Destination { get; init; } = IPAddress.Any;

    /// <summary>NDA_LLADDR: <c>lladdr</c>.</summary>
    public PhysicalAddress? LinkLayerAddress { get; init; }

    /// <summary>ndm_state (NUD_*): <c>nud permanent</c> by default, as ip(8).</summary>
    public ushort State { get; init; } = NUD_PERMANENT;

    /// <summary>NTF_PROXY: answer ARP for <see cref="Destination"/> on this interface (<c>ip neigh add proxy</c>).</summary>
    public bool Proxy { get; init; }

    /// <summary>ndm_flags other than NTF_PROXY, as received.</summary>
    public byte Flags { get; init; }

    /// <summary>NDA_PROTOCOL: who installed the entry (ownership marker), when set.</summary>
    public byte? Protocol { get; init; }

    /// <summary>Every attribute as received.</summary>
    public IReadOnlyList<NetlinkAttribute> Attributes { get; init; } = [];

    public string ToIpArguments() => Proxy
        ? $"proxy {Destination} dev (ifindex {InterfaceIndex})"
        : $"{Destination}{(LinkLayerAddress is null ? "" : " lladdr " + FormatMac(LinkLayerAddress))} dev (ifindex {InterfaceIndex}) nud 0x{State:x}";

    private static string FormatMac(PhysicalAddress a) => string.Join(':', a.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    public static NeighbourEntry Decode(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < SizeofNdmsg)
        {
            throw new NetlinkParseException("RTM_NEWNEIGH", $"payload of {p.Length} bytes is shorter than struct ndmsg ({SizeofNdmsg})", NetlinkMessageHeader.Size);
        }

        byte flags = p[10];
        var n = new NeighbourEntry
        {
            InterfaceIndex = BinaryPrimitives.ReadInt32LittleEndian(p[4..]),
            State = BinaryPrimitives.ReadUInt16LittleEndian(p[8..]),
            Proxy = (flags & NTF_PROXY) != 0,
            Flags = (byte)(flags & ~NTF_PROXY),
        };
        List<NetlinkAttribute> attrs = AttributeReader.ReadAll(m.Payload[SizeofNdmsg..], "RTM_NEWNEIGH attributes");
        foreach (NetlinkAttribute a in attrs)
        {
            n = a.Type switch
            {
                NDA_DST => n with { Destination = a.Address() },
                NDA_LLADDR => n with { LinkLayerAddress = new PhysicalAddress(a.Payload.ToArray()) },
                NDA_PROTOCOL => n with { Protocol = a.U8() },
                _ => n,
            };
        }

        return n with { Attributes = attrs };
    }

    internal void Encode(ref NetlinkWriter w, ushort type, ushort flags)
    {
        int m = w.BeginMessage(type, flags);
        Span<byte> h = w.Reserve(SizeofNdmsg);
        h[0] = Destination.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], InterfaceIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], State);
        h[10] = (byte)(Flags | (Proxy ? NTF_PROXY : 0));
        w.WriteAddress(NDA_DST, Destination);
        if (LinkLayerAddress is not null)
        {
            w.WriteBytes(NDA_LLADDR, LinkLayerAddress.GetAddressBytes());
        }

        if (Protocol is { } proto)
        {
            w.WriteU8(NDA_PROTOCOL, proto);
        }

        w.EndMessage(m);
    }
}

/// <summary>Neighbours and proxy-ARP entries: <c>ip neigh</c>.</summary>
[SupportedOSPlatform("linux")]
public sealed class NeighbourService
{
    private readonly RouteNetlink _h;

    internal NeighbourService(RouteNetlink handle) => _h = handle;

    /// <summary>
    /// Adds an entry; EEXIST if an ordinary entry is there (the kernel accepts a duplicate proxy
    /// entry silently and keeps one). Equivalent to: <c>ip neigh add [proxy] ADDR [lladdr MAC] dev IF</c>.
    /// </summary>
    public void Add(NeighbourEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _h.Execute((ref NetlinkWriter w) => entry.Encode(ref w, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL), () => $"ip neigh add {entry.ToIpArguments()}");
    }

    /// <summary>Adds or replaces an entry. Equivalent to: <c>ip neigh replace ...</c>.</summary>
    public void Replace(NeighbourEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _h.Execute((ref NetlinkWriter w) => entry.Encode(ref w, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE), () => $"ip neigh replace {entry.ToIpArguments()}");
    }

    /// <summary>Deletes an entry; false if it was not there. Equivalent to: <c>ip neigh del [proxy] ADDR dev IF</c>.</summary>
    public bool Delete(NeighbourEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return _h.ExecuteDelete((ref NetlinkWriter w) => entry.Encode(ref w, RTM_DELNEIGH, 0), () => $"ip neigh del {entry.ToIpArguments()}");
    }

    /// <summary>
    /// RTM_GETNEIGH dump: an ndmsg with NTF_PROXY for the proxy table. Unlike ip(8), which asks
    /// for AF_UNSPEC (every family), the family is AF_INET: only IPv4 entries are wanted.
    /// </summary>
    internal static void ListRequest(ref NetlinkWriter w, bool proxy)
    {
        int m = w.BeginMessage(RTM_GETNEIGH, NLM_F_DUMP);
        Span<byte> h = w.Reserve(SizeofNdmsg);
        h[0] = AF_INET;
        h[10] = proxy ? NTF_PROXY : (byte)0;
        w.EndMessage(m);
    }

    /// <summary>Proxy entries (<c>ip neigh show proxy</c>) or ordinary IPv4 entries (<c>ip neigh show</c>).</summary>
    public List<NeighbourEntry> List(bool proxy) => _h.Dump(
        (ref NetlinkWriter w) => ListRequest(ref w, proxy),
        msg => NeighbourEntry.Decode(msg) is { } n && n.Proxy == proxy ? n : null,
        () => proxy ? "ip neigh show proxy" : "ip neigh show");
}
