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

/// <summary>A policy routing rule (RTM_NEWRULE). Optional selectors are null when absent.</summary>
public sealed record RuleEntry
{
    /// <summary>Address family: AF_INET (the default) or AF_INET6.</summary>
    public byte Family { get; init; } = AF_INET;

    /// <summary>FRA_SRC with src_len: <c>from PREFIX</c>.</summary>
    public IPAddress? Source { get; init; }

    public byte SourcePrefixLength { get; init; }

    /// <summary>FRA_DST with dst_len: <c>to PREFIX</c>.</summary>
    public IPAddress? Destination { get; init; }

    public byte DestinationPrefixLength { get; init; }

    /// <summary>FRA_FWMARK: <c>fwmark M</c>.</summary>
    public uint? FwMark { get; init; }

    /// <summary>FRA_FWMASK: <c>fwmark M/MASK</c>.</summary>
    public uint? FwMask { get; init; }

    /// <summary>FRA_IIFNAME: <c>iif NAME</c>.</summary>
    public string? InputInterface { get; init; }

    /// <summary>FRA_OIFNAME: <c>oif NAME</c>.</summary>
    public string? OutputInterface { get; init; }

    /// <summary>FRA_TABLE / table: <c>lookup T</c>.</summary>
    public uint Table { get; init; } = RT_TABLE_MAIN;

    /// <summary>FRA_PRIORITY: <c>priority N</c> (null: the kernel picks one).</summary>
    public uint? Priority { get; init; }

    /// <summary>FRA_PROTOCOL: who installed the rule; MobilityAgents marks its rules with its own value.</summary>
    public byte? Protocol { get; init; }

    /// <summary>action (FR_ACT_TO_TBL: look up <see cref="Table"/>).</summary>
    public byte Action { get; init; } = FR_ACT_TO_TBL;

    /// <summary>tos selector.</summary>
    public byte Tos { get; init; }

    /// <summary>FIB_RULE_INVERT: <c>not</c>.</summary>
    public bool Invert { get; init; }

    /// <summary>FRA_SUPPRESS_PREFIXLEN: <c>suppress_prefixlength N</c>.</summary>
    public uint? SuppressPrefixLength { get; init; }

    /// <summary>Every attribute as received (empty for entries built by the caller).</summary>
    public IReadOnlyList<NetlinkAttribute> Attributes { get; init; } = [];

    /// <summary>The rule as <c>ip rule</c> arguments.</summary>
    public string ToIpArguments()
    {
        var s = new StringBuilder();
        if (Invert)
        {
            s.Append("not ");
        }

        s.Append(Source is null ? "from all" : $"from {Source}/{SourcePrefixLength}");
        if (Destination is not null)
        {
            s.Append(CultureInfo.InvariantCulture, $" to {Destination}/{DestinationPrefixLength}");
        }

        if (FwMark is { } mark)
        {
            s.Append(CultureInfo.InvariantCulture, $" fwmark 0x{mark:x}");
            if (FwMask is { } mask)
            {
                s.Append(CultureInfo.InvariantCulture, $"/0x{mask:x}");
            }
        }

        if (InputInterface is not null)
        {
            s.Append(" iif ").Append(InputInterface);
        }

        if (OutputInterface is not null)
        {
            s.Append(" oif ").Append(OutputInterface);
        }

        s.Append(CultureInfo.InvariantCulture, $" lookup {Table}");
        if (Priority is { } prio)
        {
            s.Append(CultureInfo.InvariantCulture, $" priority {prio}");
        }

        if (Protocol is { } proto)
        {
            s.Append(CultureInfo.InvariantCulture, $" protocol {proto}");
        }

        if (SuppressPrefixLength is { } sp)
        {
            s.Append(CultureInfo.InvariantCulture, $" suppress_prefixlength {sp}");
        }

        return s.ToString();
    }

    public static RuleEntry Decode(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < SizeofFibRuleHdr)
        {
            throw new NetlinkParseException("RTM_NEWRULE", $"payload of {p.Length} bytes is shorter than struct fib_rule_hdr ({SizeofFibRuleHdr})", NetlinkMessageHeader.Size);
        }

        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
        var r = new RuleEntry
        {
            Family = p[0],
            DestinationPrefixLength = p[1],
            SourcePrefixLength = p[2],
            Tos = p[3],
            Table = p[4],
            Action = p[7],
            Invert = (flags & FIB_RULE_INVERT) != 0,
            // The kernel sends FRA_PRIORITY only when it is not 0 (fib_nl_fill_rule): absent is 0
            // (the local-table rule), not "unset".
            Priority = 0,
        };
        List<NetlinkAttribute> attrs = AttributeReader.ReadAll(m.Payload[SizeofFibRuleHdr..], "RTM_NEWRULE attributes");
        foreach (NetlinkAttribute a in attrs)
        {
            r = a.Type switch
            {
                FRA_SRC => r with { Source = a.Address() },
                FRA_DST => r with { Destination = a.Address() },
                FRA_FWMARK => r with { FwMark = a.U32() },
                FRA_FWMASK => r with { FwMask = a.U32() },
                FRA_IIFNAME => r with { InputInterface = a.String() },
                FRA_OIFNAME => r with { OutputInterface = a.String() },
                FRA_TABLE => r with { Table = a.U32() },
                FRA_PRIORITY => r with { Priority = a.U32() },
                FRA_PROTOCOL => r with { Protocol = a.U8() },
                FRA_SUPPRESS_PREFIXLEN => r with { SuppressPrefixLength = a.U32() == uint.MaxValue ? null : a.U32() },
                _ => r,
            };
        }

        return r with { Attributes = attrs };
    }

    /// <summary>Writes the request; attribute order follows ip(8) for <c>ip rule add from S to D fwmark M/K iif I oif O table T priority P protocol X</c>.</summary>
    internal void Encode(ref NetlinkWriter w, ushort type, ushort flags)
    {
        if (Source is not null && Source.AddressFamily != (Family == AF_INET6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork))
        {
            throw new ArgumentException($"rule source {Source} does not match the rule's address family");
        }

        int m = w.BeginMessage(type, flags);
        Span<byte> h = w.Reserve(SizeofFibRuleHdr);
        h[0] = Family;
        h[1] = Destination is null ? (byte)0 : DestinationPrefixLength;
        h[2] = Source is null ? (byte)0 : SourcePrefixLength;
        h[3] = Tos;
        h[4] = Table < 256 ? (byte)Table : (byte)RT_TABLE_UNSPEC;
        h[7] = Action;
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], Invert ? FIB_RULE_INVERT : 0);
        if (Source is not null)
        {
            w.WriteAddress(FRA_SRC, Source);
        }

        if (Destination is not null)
        {
            w.WriteAddress(FRA_DST, Destination);
        }

        if (FwMark is { } mark)
        {
            w.WriteU32(FRA_FWMARK, mark);
            if (FwMask is { } mask)
            {
                w.WriteU32(FRA_FWMASK, mask);
            }
        }

        if (InputInterface is not null)
        {
            w.WriteString(FRA_IIFNAME, InputInterface);
        }

        if (OutputInterface is not null)
        {
            w.WriteString(FRA_OIFNAME, OutputInterface);
        }

        if (Table >= 256)
        {
            // As ip(8): a table below 256 travels in fib_rule_hdr.table only (the kernel's
            // frh_get_table prefers FRA_TABLE and falls back to the header).
            w.WriteU32(FRA_TABLE, Table);
        }

        if (Priority is { } prio)
        {
            w.WriteU32(FRA_PRIORITY, prio);
        }

        if (Protocol is { } proto)
        {
            w.WriteU8(FRA_PROTOCOL, proto);
        }

        if (SuppressPrefixLength is { } sp)
        {
            w.WriteU32(FRA_SUPPRESS_PREFIXLEN, sp);
        }

        w.EndMessage(m);
    }
}

/// <summary>Policy rules: <c>ip rule</c>.</summary>
[SupportedOSPlatform("linux")]
public sealed class RuleService
{
    private readonly RouteNetlink _h;

    internal RuleService(RouteNetlink handle) => _h = handle;

    /// <summary>Adds a rule; EEXIST if an identical one is there. Equivalent to: <c>ip rule add ...</c>.</summary>
    public void Add(RuleEntry rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        _h.Execute((ref NetlinkWriter w) => rule.Encode(ref w, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL), () => $"ip rule add {rule.ToIpArguments()}");
    }

    /// <summary>Deletes the first rule matching every selector given; false if none. Equivalent to: <c>ip rule del ...</c>.</summary>
    public bool Delete(RuleEntry rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return _h.ExecuteDelete((ref NetlinkWriter w) => rule.Encode(ref w, RTM_DELRULE, 0), () => $"ip rule del {rule.ToIpArguments()}");
    }

    /// <summary>RTM_GETRULE dump: a fib_rule_hdr with only the family set, as ip(8).</summary>
    internal static void ListRequest(ref NetlinkWriter w, byte family)
    {
        int m = w.BeginMessage(RTM_GETRULE, NLM_F_DUMP);
        Span<byte> h = w.Reserve(SizeofFibRuleHdr);
        h[0] = family;
        w.EndMessage(m);
    }

    /// <summary>Every rule of a family. Equivalent to: <c>ip rule show</c>.</summary>
    public List<RuleEntry> List(byte family = AF_INET) => _h.Dump(
        (ref NetlinkWriter w) => ListRequest(ref w, family),
        RuleEntry.Decode,
        () => family == AF_INET6 ? "ip -6 rule show" : "ip rule show");
}
