using System.Buffers.Binary;
using System.Net;
using System.Text;
using static MobilityAgents.Netlink.NetlinkConstants;

namespace MobilityAgents.Netlink;

/// <summary>One attribute as read from the wire: its type (without NLA_F_* flags), whether it was marked nested, and its payload.</summary>
public readonly record struct NetlinkAttribute(ushort Type, bool Nested, ReadOnlyMemory<byte> Payload)
{
    /// <summary>The raw nla_type including NLA_F_NESTED / NLA_F_NET_BYTEORDER.</summary>
    public ushort RawType => (ushort)(Type | (Nested ? NLA_F_NESTED : 0));
}

/// <summary>
/// Iterates the attributes of a buffer. A truncated header or an nla_len that is too small or
/// runs past the buffer throws <see cref="NetlinkParseException"/>; the typed getters check the
/// payload size they need. Unknown attributes are simply returned like known ones.
/// </summary>
public ref struct AttributeReader
{
    private readonly ReadOnlySpan<byte> _span;
    private readonly ReadOnlyMemory<byte> _memory;
    private readonly string _context;
    private int _offset;

    public AttributeReader(ReadOnlyMemory<byte> buffer, string context)
    {
        _memory = buffer;
        _span = buffer.Span;
        _context = context;
        _offset = 0;
        Current = default;
    }

    public NetlinkAttribute Current { get; private set; }

    /// <summary>Moves to the next attribute; false at the end of the buffer.</summary>
    public bool Next()
    {
        int left = _span.Length - _offset;
        if (left == 0)
        {
            return false;
        }

        if (left < Align.NLA_HDRLEN)
        {
            throw new NetlinkParseException(_context, $"{left} trailing bytes are too short for an attribute header", _offset);
        }

        int len = BinaryPrimitives.ReadUInt16LittleEndian(_span[_offset..]);
        ushort rawType = BinaryPrimitives.ReadUInt16LittleEndian(_span[(_offset + 2)..]);
        if (len < Align.NLA_HDRLEN || len > left)
        {
            throw new NetlinkParseException(_context, $"attribute type {rawType & NLA_TYPE_MASK} has nla_len {len} but {left} bytes remain", _offset);
        }

        Current = new NetlinkAttribute((ushort)(rawType & NLA_TYPE_MASK), (rawType & NLA_F_NESTED) != 0,
            _memory.Slice(_offset + Align.NLA_HDRLEN, len - Align.NLA_HDRLEN));
        // The last attribute may omit its trailing padding.
        _offset = Math.Min(_span.Length, _offset + Align.NlaAlign(len));
        return true;
    }

    /// <summary>Reads all attributes into a list (unknown ones included).</summary>
    public static List<NetlinkAttribute> ReadAll(ReadOnlyMemory<byte> buffer, string context)
    {
        var list = new List<NetlinkAttribute>();
        var r = new AttributeReader(buffer, context);
        while (r.Next())
        {
            list.Add(r.Current);
        }

        return list;
    }
}

/// <summary>Typed views of attribute payloads, each checking the size it needs.</summary>
public static class AttributeValue
{
    private static ReadOnlySpan<byte> Need(NetlinkAttribute a, int size, string what)
    {
        if (a.Payload.Length < size)
        {
            throw new NetlinkParseException($"attribute type {a.Type}", $"{a.Payload.Length}-byte payload is too short for a {what} ({size} bytes needed)", -1);
        }

        return a.Payload.Span;
    }

    public static byte U8(this NetlinkAttribute a) => Need(a, 1, "u8")[0];

    public static ushort U16(this NetlinkAttribute a) => BinaryPrimitives.ReadUInt16LittleEndian(Need(a, 2, "u16"));

    public static ushort U16BigEndian(this NetlinkAttribute a) => BinaryPrimitives.ReadUInt16BigEndian(Need(a, 2, "be16"));

    public static uint U32(this NetlinkAttribute a) => BinaryPrimitives.ReadUInt32LittleEndian(Need(a, 4, "u32"));

    public static int I32(this NetlinkAttribute a) => BinaryPrimitives.ReadInt32LittleEndian(Need(a, 4, "s32"));

    public static uint U32BigEndian(this NetlinkAttribute a) => BinaryPrimitives.ReadUInt32BigEndian(Need(a, 4, "be32"));

    public static ulong U64(this NetlinkAttribute a) => BinaryPrimitives.ReadUInt64LittleEndian(Need(a, 8, "u64"));

    /// <summary>A string attribute, up to its first NUL (or the whole payload if there is none).</summary>
    public static string String(this NetlinkAttribute a)
    {
        ReadOnlySpan<byte> s = a.Payload.Span;
        int nul = s.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? s[..nul] : s);
    }

    /// <summary>An address attribute: 4 bytes IPv4, 16 bytes IPv6; anything else is malformed.</summary>
    public static IPAddress Address(this NetlinkAttribute a) => a.Payload.Length switch
    {
        4 or 16 => new IPAddress(a.Payload.Span),
        _ => throw new NetlinkParseException($"attribute type {a.Type}", $"{a.Payload.Length}-byte payload is not an IPv4 (4 bytes) or IPv6 (16 bytes) address", -1),
    };
}
