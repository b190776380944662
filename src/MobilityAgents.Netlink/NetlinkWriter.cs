using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using static MobilityAgents.Netlink.NetlinkConstants;

namespace MobilityAgents.Netlink;

/// <summary>
/// Writes netlink messages and attributes into a caller-provided buffer without allocating.
/// Messages and nested attributes are opened with <c>Begin*</c>, which returns the offset of the
/// header, and closed with <c>End*</c>, which back-patches the length (and NLA_F_NESTED).
/// Multi-byte values are host order (little-endian) unless the method name says BigEndian
/// (network order, as the kernel stores IPv4 addresses and ports).
/// </summary>
public ref struct NetlinkWriter
{
    private readonly Span<byte> _buffer;
    private int _position;

    public NetlinkWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Length => _position;

    /// <summary>Space left in the buffer.</summary>
    public readonly int Remaining => _buffer.Length - _position;

    /// <summary>The bytes written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer[.._position];

    /// <summary>Drops everything written after <paramref name="length"/> (e.g. an empty nested attribute).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _position);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _position = length;
    }

    /// <summary>Starts a message; returns the offset of its header, to pass to <see cref="EndMessage"/>.</summary>
    public int BeginMessage(ushort type, ushort flags, uint sequence = 0, uint portId = 0)
    {
        int start = _position;
        Span<byte> h = Reserve(NetlinkMessageHeader.Size);
        new NetlinkMessageHeader(0, type, flags, sequence, portId).WriteLittleEndian(h);
        return start;
    }

    /// <summary>Closes a message: pads to NLMSG_ALIGNTO and back-patches nlmsg_len (the aligned length).</summary>
    public void EndMessage(int start)
    {
        Pad(Align.NlmsgAlign(_position) - _position);
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[start..], (uint)(_position - start));
    }

    /// <summary>Reserves a family header (ifinfomsg, rtmsg, ...) of <paramref name="size"/> zeroed bytes and returns it to fill in.</summary>
    public Span<byte> Reserve(int size)
    {
        if (size > Remaining)
        {
            throw new InvalidOperationException($"netlink message does not fit: {size} more bytes needed, {Remaining} left in a {_buffer.Length}-byte buffer");
        }

        Span<byte> s = _buffer.Slice(_position, size);
        s.Clear();
        _position += size;
        return s;
    }

    private void Pad(int n)
    {
        if (n > 0)
        {
            Reserve(n);
        }
    }

    /// <summary>Starts a nested attribute; returns its offset for <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type) => BeginAttribute((ushort)(type | NLA_F_NESTED));

    /// <summary>Starts a nested attribute without NLA_F_NESTED (some legacy kernel attributes, e.g. IFLA_LINKINFO as iproute2 sends it).</summary>
    public int BeginNestedLegacy(ushort type) => BeginAttribute(type);

    /// <summary>Closes a nested attribute and back-patches its nla_len.</summary>
    public void EndNested(int start)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[start..], (ushort)(_position - start));
    }

    private int BeginAttribute(ushort type)
    {
        int start = _position;
        Span<byte> h = Reserve(Align.NLA_HDRLEN);
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], type);
        return start;
    }

    private Span<byte> Attribute(ushort type, int payloadLength)
    {
        int start = BeginAttribute(type);
        Span<byte> payload = Reserve(payloadLength);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[start..], (ushort)(Align.NLA_HDRLEN + payloadLength));
        Pad(Align.NlaAlign(payloadLength) - payloadLength);
        return payload;
    }

    public void WriteFlag(ushort type) => Attribute(type, 0);

    public void WriteU8(ushort type, byte value) => Attribute(type, 1)[0] = value;

    public void WriteU16(ushort type, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Attribute(type, 2), value);

    public void WriteU16BigEndian(ushort type, ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Attribute(type, 2), value);

    public void WriteU32(ushort type, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Attribute(type, 4), value);

    public void WriteI32(ushort type, int value) => BinaryPrimitives.WriteInt32LittleEndian(Attribute(type, 4), value);

    public void WriteU32BigEndian(ushort type, uint value) => BinaryPrimitives.WriteUInt32BigEndian(Attribute(type, 4), value);

    public void WriteU64(ushort type, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Attribute(type, 8), value);

    public void WriteBytes(ushort type, ReadOnlySpan<byte> value) => value.CopyTo(Attribute(type, value.Length));

    /// <summary>A NUL-terminated string attribute (NLA_NUL_STRING / NLA_STRING as iproute2 sends them).</summary>
    public void WriteString(ushort type, string value)
    {
        int n = Encoding.UTF8.GetByteCount(value);
        Span<byte> p = Attribute(type, n + 1);
        Encoding.UTF8.GetBytes(value, p);
        p[n] = 0;
    }

    /// <summary>An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order.</summary>
    public void WriteAddress(ushort type, IPAddress address)
    {
        int n = address.AddressFamily == AddressFamily.InterNetwork ? 4 : 16;
        if (!address.TryWriteBytes(Attribute(type, n), out _))
        {
            throw new ArgumentException($"cannot encode address {address}", nameof(address));
        }
    }
}
