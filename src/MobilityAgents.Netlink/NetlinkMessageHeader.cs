using System.Buffers.Binary;

namespace MobilityAgents.Netlink;

/// <summary>
/// struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq; __u32 nlmsg_pid; }
/// Netlink headers are in host byte order (little-endian on every platform this runs on).
/// </summary>
public readonly record struct NetlinkMessageHeader(uint Length, ushort Type, ushort Flags, uint Sequence, uint PortId)
{
    public const int Size = NetlinkConstants.SizeofNlmsghdr;

    public static NetlinkMessageHeader ReadLittleEndian(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b),
        BinaryPrimitives.ReadUInt16LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[6..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[12..]));

    public void WriteLittleEndian(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Length);
        BinaryPrimitives.WriteUInt16LittleEndian(b[4..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], Sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], PortId);
    }

    public bool HasFlag(ushort flag) => (Flags & flag) == flag;
}

/// <summary>One netlink message: its header and its payload (everything after the header, unaligned length).</summary>
public readonly record struct NetlinkMessage(NetlinkMessageHeader Header, ReadOnlyMemory<byte> Payload)
{
    public ushort Type => Header.Type;
}
