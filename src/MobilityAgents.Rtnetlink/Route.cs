using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using MobilityAgents.Netlink;
using static MobilityAgents.Netlink.NetlinkConstants;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink;

/// <summary>A route (RTM_NEWROUTE). Optional attributes are null when absent.</summary>
public sealed record RouteEntry
{
    /// <summary>RTA_DST with rtm_dst_len; 0.0.0.0/0 is the default route.</summary>
    public IPAddress Destination { get; init; } = IPAddress.Any;

    /// <summary>rtm_dst_len.</summary>
    public byte DestinationPrefixLength { get; init; }

    /// <summary>RTA_TABLE / rtm_table.</summary>
    public uint Table { get; init; } = RT_TABLE_MAIN;

    /// <summary>rtm_protocol: who installed the route. MobilityAgents marks its routes with its own value.</summary>
    public byte Protocol { get; init; } = RTPROT_BOOT;

    /// <summary>rtm_scope; null lets it be chosen as ip(8) does: link for a route without gateway, universe otherwise.</summary>
    public byte? Scope { get; init; }

    /// <summary>rtm_type (RTN_UNICAST, RTN_LOCAL, RTN_BLACKHOLE, ...).</summary>
    public byte Type { get; init; } = RTN_UNICAST;

    /// <summary>rtm_tos.</summary>
    public byte Tos { get; init; }

    /// <summary>RTA_OIF: <c>dev</c>.</summary>
    public int? OutputInterface { get; init; }

    /// <summary>RTA_GATEWAY: <c>via</c>.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>RTA_PREFSRC: <c>src</c>.</summary>
    public IPAddress? PreferredSource { get; init; }

    /// <summary>RTA_PRIORITY: <c>metric</c>.</summary>
    public uint? Metric { get; init; }

    /// <summary>RTA_METRICS/RTAX_MTU: <c>mtu</c>.</summary>
    public uint? Mtu { get; init; }

    /// <summary>Lightweight tunnel RTA_ENCAP (LWTUNNEL_ENCAP_IP) LWTUNNEL_IP_DST: <c>encap ip dst X</c>.</summary>
    public IPAddress? EncapDestination { get; init; }

    /// <summary>LWTUNNEL_IP_SRC: <c>encap ip src X</c>.</summary>
    public IPAddress? EncapSource { get; init; }

    /// <summary>LWTUNNEL_IP_TTL: <c>encap ip ttl N</c>.</summary>
    public byte? EncapTtl { get; init; }

    /// <summary>Every attribute as received (empty for entries built by the caller).</summary>
    public IReadOnlyList<NetlinkAttribute> Attributes { get; init; } = [];

    internal byte Family => Destination.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;

    /// <summary>The scope the kernel will be asked for when adding.</summary>
    public byte EffectiveScope => Scope ?? (Type is RTN_LOCAL ? RT_SCOPE_HOST : Gateway is null && Type == RTN_UNICAST ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);

    /// <summary>The route as <c>ip route</c> arguments.</summary>
    public string ToIpArguments()
    {
        var s = new StringBuilder();
        if (Type != RTN_UNICAST)
        {
            s.Append(TypeName(Type)).Append(' ');
        }

        s.Append(DestinationPrefixLength == 0 && Destination.Equals(IPAddress.Any) ? "default" : $"{Destination}/{DestinationPrefixLength}");
        if (EncapDestination is not null)
        {
            s.Append(" encap ip dst ").Append(EncapDestination);
            if (EncapSource is not null)
            {
                s.Append(" src ").Append(EncapSource);
            }

            if (EncapTtl is { } ttl)
            {
                s.Append(CultureInfo.InvariantCulture, $" ttl {ttl}");
            }
        }

        if (Gateway is not null)
        {
            s.Append(" via ").Append(Gateway);
        }

        if (OutputInterface is { } oif)
        {
            s.Append(CultureInfo.InvariantCulture, $" dev (ifindex {oif})");
        }

        if (PreferredSource is not null)
        {
            s.Append(" src ").Append(PreferredSource);
        }

        s.Append(CultureInfo.InvariantCulture, $" table {Table} proto {Protocol}");
        if (Scope is { } sc)
        {
            s.Append(CultureInfo.InvariantCulture, $" scope {sc}");
        }

        if (Metric is { } metric)
        {
            s.Append(CultureInfo.InvariantCulture, $" metric {metric}");
        }

        if (Mtu is { } mtu)
        {
            s.Append(CultureInfo.InvariantCulture, $" mtu {mtu}");
        }

        return s.ToString();
    }

    private static string TypeName(byte t) => t switch
    {
        RTN_LOCAL => "local",
        RTN_BROADCAST => "broadcast",
        RTN_BLACKHOLE => "blackhole",
        RTN_UNREACHABLE => "unreachable",
        RTN_PROHIBIT => "prohibit",
        RTN_THROW => "throw",
        _ => t.ToString(CultureInfo.InvariantCulture),
    };

    public static RouteEntry Decode(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < SizeofRtmsg)
        {
            throw new NetlinkParseException("RTM_NEWROUTE", $"payload of {p.Length} bytes is shorter than struct rtmsg ({SizeofRtmsg})", NetlinkMessageHeader.Size);
        }

        // The attributes are decoded into locals and the record is built once (a `with` per
        // attribute cost a copy of the whole record each: most of a dump's allocations).
        byte family = p[0];
        IPAddress destination = family == AF_INET6 ? IPAddress.IPv6Any : IPAddress.Any;
        uint table = p[4];
        int? oif = null;
        IPAddress? gateway = null, prefsrc = null;
        uint? metric = null;
        var extra = default(Extra);
        List<NetlinkAttribute> attrs = AttributeReader.ReadAll(m.Payload[SizeofRtmsg..], "RTM_NEWROUTE attributes");
        foreach (NetlinkAttribute a in attrs)
        {
            switch (a.Type)
            {
                case RTA_DST:
                    destination = a.Address();
                    break;
                case RTA_TABLE:
                    table = a.U32();
                    break;
                case RTA_OIF:
                    oif = a.I32();
                    break;
                case RTA_GATEWAY:
                    gateway = a.Address();
                    break;
                case RTA_PREFSRC:
                    prefsrc = a.Address();
                    break;
                case RTA_PRIORITY:
                    metric = a.U32();
                    break;
                case RTA_METRICS:
                    DecodeMetrics(ref extra, a.Payload);
                    break;
                case RTA_ENCAP:
                    DecodeEncap(ref extra, a.Payload);
                    break;
                default:
                    break;
            }
        }

        return new RouteEntry
        {
            Destination = destination,
            DestinationPrefixLength = p[1],
            Tos = p[3],
            Table = table,
            Protocol = p[5],
            Scope = p[6],
            Type = p[7],
            OutputInterface = oif,
            Gateway = gateway,
            PreferredSource = prefsrc,
            Metric = metric,
            Mtu = extra.Mtu,
            EncapDestination = extra.EncapDestination,
            EncapSource = extra.EncapSource,
            EncapTtl = extra.EncapTtl,
            Attributes = attrs,
        };
    }

    /// <summary>What the nested attributes (RTA_METRICS, RTA_ENCAP) contribute, while decoding.</summary>
    private struct Extra
    {
        public uint? Mtu;
        public IPAddress? EncapDestination;
        public IPAddress? EncapSource;
        public byte? EncapTtl;
    }

    private static void DecodeMetrics(ref Extra x, ReadOnlyMemory<byte> data)
    {
        var rd = new AttributeReader(data, "RTA_METRICS");
        while (rd.Next())
        {
            if (rd.Current.Type == RTAX_MTU)
            {
                x.Mtu = rd.Current.U32();
            }
        }
    }

    private static void DecodeEncap(ref Extra x, ReadOnlyMemory<byte> data)
    {
        // Only LWTUNNEL_ENCAP_IP is decoded; RTA_ENCAP_TYPE tells which, but its attribute set is distinct enough.
        var rd = new AttributeReader(data, "RTA_ENCAP");
        while (rd.Next())
        {
            switch (rd.Current.Type)
            {
                case LWTUNNEL_IP_DST:
                    x.EncapDestination = rd.Current.Address();
                    break;
                case LWTUNNEL_IP_SRC:
                    x.EncapSource = NullIfAny(rd.Current.Address());
                    break;
                case LWTUNNEL_IP_TTL:
                    x.EncapTtl = rd.Current.U8() == 0 ? null : rd.Current.U8();
                    break;
                default:
                    break;
            }
        }
    }

    private static IPAddress? NullIfAny(IPAddress a) => a.Equals(IPAddress.Any) ? null : a;

    /// <summary>
    /// Writes the request. Attribute order follows ip(8) for the same command line
    /// (<c>ip route add DST [encap ip dst X] [via G] [dev D] [src S] table T proto P [metric M] [mtu U]</c>):
    /// RTA_DST, RTA_ENCAP, RTA_ENCAP_TYPE, RTA_GATEWAY, RTA_PREFSRC, RTA_PRIORITY, RTA_OIF, RTA_METRICS
    /// (checked against iproute2's bytes by the golden tests).
    /// A delete asks for scope "nowhere" (match any) unless one is given, as ip(8) does.
    /// </summary>
    internal void Encode(ref NetlinkWriter w, ushort type, ushort flags)
    {
        bool delete = type == RTM_DELROUTE;
        int m = w.BeginMessage(type, flags);
        Span<byte> h = w.Reserve(SizeofRtmsg);
        h[0] = Family;
        h[1] = DestinationPrefixLength;
        h[2] = 0; // rtm_src_len
        h[3] = Tos;
        h[4] = Table < 256 ? (byte)Table : (byte)RT_TABLE_UNSPEC;
        h[5] = Protocol;
        h[6] = delete ? Scope ?? RT_SCOPE_NOWHERE : EffectiveScope;
        h[7] = Type;
        if (Table >= 256)
        {
            w.WriteU32(RTA_TABLE, Table);
        }

        if (DestinationPrefixLength > 0 || !Destination.Equals(IPAddress.Any))
        {
            w.WriteAddress(RTA_DST, Destination);
        }

        if (EncapDestination is not null)
        {
            // ip(8) writes RTA_ENCAP first, then RTA_ENCAP_TYPE.
            int e = w.BeginNested(RTA_ENCAP);
            w.WriteAddress(LWTUNNEL_IP_DST, EncapDestination);
            if (EncapSource is not null)
            {
                w.WriteAddress(LWTUNNEL_IP_SRC, EncapSource);
            }

            if (EncapTtl is { } ttl)
            {
                w.WriteU8(LWTUNNEL_IP_TTL, ttl);
            }

            w.EndNested(e);
            w.WriteU16(RTA_ENCAP_TYPE, LWTUNNEL_ENCAP_IP);
        }

        if (Gateway is not null)
        {
            w.WriteAddress(RTA_GATEWAY, Gateway);
        }

        if (PreferredSource is not null)
        {
            w.WriteAddress(RTA_PREFSRC, PreferredSource);
        }

        if (Metric is { } metric)
        {
            w.WriteU32(RTA_PRIORITY, metric);
        }

        // ip(8) adds RTA_OIF and then RTA_METRICS after parsing the whole command line.
        if (OutputInterface is { } oif)
        {
            w.WriteI32(RTA_OIF, oif);
        }

        if (Mtu is { } mtu)
        {
            int x = w.BeginNestedLegacy(RTA_METRICS);
            w.WriteU32(RTAX_MTU, mtu);
            w.EndNested(x);
        }

        w.EndMessage(m);
    }
}

/// <summary>Routes: <c>ip route</c>.</summary>
[SupportedOSPlatform("linux")]
public sealed class RouteService
{
    private readonly RouteNetlink _h;

    internal RouteService(RouteNetlink handle) => _h = handle;

    /// <summary>Adds a route; EEXIST if one with the same key is there. Equivalent to: <c>ip route add ...</c>.</summary>
    public void Add(RouteEntry route)
    {
        ArgumentNullException.ThrowIfNull(route);
        _h.Execute((ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL), () => $"ip route add {route.ToIpArguments()}");
    }

    /// <summary>Adds or replaces a route. Equivalent to: <c>ip route replace ...</c>.</summary>
    public void Replace(RouteEntry route)
    {
        ArgumentNullException.ThrowIfNull(route);
        _h.Execute((ref NetlinkWriter w) => route.Encode(ref w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE), () => $"ip route replace {route.ToIpArguments()}");
    }

    /// <summary>
    /// Deletes a route; false if it was not there. The kernel matches every field given (gateway,
    /// protocol, output interface, metric), so pass the route as it is in the kernel (e.g. from
    /// <see cref="List"/>), not as it was before a replace. Equivalent to: <c>ip route del ... proto P</c>.
    /// </summary>
    public bool Delete(RouteEntry route)
    {
        ArgumentNullException.ThrowIfNull(route);
        return _h.ExecuteDelete((ref NetlinkWriter w) => route.Encode(ref w, RTM_DELROUTE, 0), () => $"ip route del {route.ToIpArguments()}");
    }

    /// <summary>RTM_GETROUTE dump of one IPv4 table (as ip(8): rtmsg + RTA_TABLE); with strict checking the kernel filters by RTA_TABLE itself.</summary>
    internal static void ListRequest(ref NetlinkWriter w, uint table)
    {
        int m = w.BeginMessage(RTM_GETROUTE, NLM_F_DUMP);
        Span<byte> h = w.Reserve(SizeofRtmsg);
        h[0] = AF_INET;
        w.WriteU32(RTA_TABLE, table);
        w.EndMessage(m);
    }

    /// <summary>
    /// Routes of one table (default main), IPv4; empty for a table that was never used.
    /// Equivalent to: <c>ip route show table T</c>.
    /// </summary>
    public List<RouteEntry> List(uint table = RT_TABLE_MAIN)
    {
        try
        {
            return _h.Dump(
                (ref NetlinkWriter w) => ListRequest(ref w, table),
                msg => RouteEntry.Decode(msg) is { } r && r.Table == table ? r : null,
                () => $"ip route show table {table}");
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT)
        {
            // The kernel creates a FIB table with its first route and answers a dump filtered on
            // one it never created with ENOENT ("ipv4: FIB table does not exist"): no routes.
            return [];
        }
    }

    /// <summary>
    /// Asks the kernel which route a packet to <paramref name="destination"/> would take, with the
    /// source address it would pick (<see cref="RouteEntry.PreferredSource"/>), the output interface
    /// and the gateway; null when there is no route (ENETUNREACH, EHOSTUNREACH).
    /// Equivalent to: <c>ip route get DST [mark M]</c>.
    /// </summary>
    public RouteEntry? Get(IPAddress destination, uint? mark = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        string describe() => $"ip route get {destination}{(mark is { } mk ? $" mark 0x{mk:x}" : "")}";
        try
        {
            List<NetlinkMessage> r = _h.Execute(
                (ref NetlinkWriter w) =>
                {
                    int m = w.BeginMessage(RTM_GETROUTE, 0);
                    Span<byte> h = w.Reserve(SizeofRtmsg);
                    h[0] = destination.AddressFamily == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET;
                    h[1] = (byte)(destination.AddressFamily == AddressFamily.InterNetworkV6 ? 128 : 32);
                    // Report the table the lookup matched in (rtm_table), not the cached route's.
                    BinaryPrimitives.WriteUInt32LittleEndian(h[8..], RTM_F_LOOKUP_TABLE);
                    w.WriteAddress(RTA_DST, destination);
                    if (mark is { } mk)
                    {
                        w.WriteU32(RTA_MARK, mk);
                    }

                    w.EndMessage(m);
                },
                describe);
            return r.Count > 0 ? RouteEntry.Decode(r[0]) : null;
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENETUNREACH or Errno.EHOSTUNREACH)
        {
            return null;
        }
    }

    /// <summary>Adds many routes, pipelined. Returns one error (or null) per route, in order; it does not stop at the first error.</summary>
    public NetlinkException?[] AddMany(IReadOnlyList<RouteEntry> routes) => Batch(routes, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, "add");

    /// <summary>Replaces many routes, pipelined (see <see cref="AddMany"/>).</summary>
    public NetlinkException?[] ReplaceMany(IReadOnlyList<RouteEntry> routes) => Batch(routes, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, "replace");

    /// <summary>Deletes many routes, pipelined; routes already gone count as deleted (null).</summary>
    public NetlinkException?[] DeleteMany(IReadOnlyList<RouteEntry> routes)
    {
        NetlinkException?[] r = Batch(routes, RTM_DELROUTE, 0, "del");
        for (int i = 0; i < r.Length; i++)
        {
            if (r[i] is { IsNotFound: true })
            {
                r[i] = null;
            }
        }

        return r;
    }

    private NetlinkException?[] Batch(IReadOnlyList<RouteEntry> routes, ushort type, ushort flags, string verb)
    {
        ArgumentNullException.ThrowIfNull(routes);
        const int PerRoute = 160; // the largest route we encode (encap, gateway, src, metric, mtu) is well below
        byte[] buf = ArrayPool<byte>.Shared.Rent(Math.Max(1, routes.Count) * PerRoute);
        try
        {
            var starts = new int[routes.Count];
            var w = new NetlinkWriter(buf);
            for (int i = 0; i < routes.Count; i++)
            {
                starts[i] = w.Length;
                routes[i].Encode(ref w, type, flags);
            }

            return _h.Socket.ExecuteBatch(buf.AsSpan(0, w.Length), starts, i => $"ip route {verb} {routes[i].ToIpArguments()}");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }
}
