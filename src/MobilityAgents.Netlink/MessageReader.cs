using System.Buffers.Binary;
using static MobilityAgents.Netlink.NetlinkConstants;

namespace MobilityAgents.Netlink;

/// <summary>
/// Splits a datagram into netlink messages. A truncated header, or an nlmsg_len shorter than the
/// header or longer than what is left, throws <see cref="NetlinkParseException"/>.
/// </summary>
public static class MessageReader
{
    public static List<NetlinkMessage> ReadAll(ReadOnlyMemory<byte> datagram)
    {
        var list = new List<NetlinkMessage>();
        var r = new DatagramReader(datagram);
        while (r.Next())
        {
            list.Add(r.Current);
        }

        return list;
    }

    /// <summary>Checks every message header of a datagram; throws at the first one that is truncated or whose length lies.</summary>
    internal static void Validate(ReadOnlySpan<byte> s)
    {
        int offset = 0;
        while (offset < s.Length)
        {
            int left = s.Length - offset;
            if (left < NetlinkMessageHeader.Size)
            {
                throw new NetlinkParseException("netlink datagram", $"{left} trailing bytes are too short for a message header", offset);
            }

            var h = NetlinkMessageHeader.ReadLittleEndian(s[offset..]);
            if (h.Length < NetlinkMessageHeader.Size || h.Length > left)
            {
                throw new NetlinkParseException("netlink datagram", $"message type {h.Type} has nlmsg_len {h.Length} but {left} bytes remain", offset);
            }

            offset = Math.Min(s.Length, offset + Align.NlmsgAlign((int)h.Length));
        }
    }
}

/// <summary>
/// The messages of a datagram, read in place: no copy, no list. The constructor checks every header
/// first (the errors of <see cref="MessageReader.ReadAll"/>), so a malformed datagram throws before
/// any of its messages is seen. The messages' payloads point into the datagram's memory.
/// </summary>
internal struct DatagramReader
{
    private readonly ReadOnlyMemory<byte> _datagram;
    private int _offset;

    public DatagramReader(ReadOnlyMemory<byte> datagram)
    {
        MessageReader.Validate(datagram.Span);
        _datagram = datagram;
        _offset = 0;
        Current = default;
        PayloadOffset = 0;
    }

    /// <summary>The current message.</summary>
    public NetlinkMessage Current { get; private set; }

    /// <summary>Where the current message's payload starts in the datagram.</summary>
    public int PayloadOffset { get; private set; }

    /// <summary>Moves to the next message; false at the end of the datagram.</summary>
    public bool Next()
    {
        ReadOnlySpan<byte> s = _datagram.Span;
        if (_offset >= s.Length)
        {
            return false;
        }

        var h = NetlinkMessageHeader.ReadLittleEndian(s[_offset..]);
        PayloadOffset = _offset + NetlinkMessageHeader.Size;
        Current = new NetlinkMessage(h, _datagram.Slice(PayloadOffset, (int)h.Length - NetlinkMessageHeader.Size));
        _offset = Math.Min(s.Length, _offset + Align.NlmsgAlign((int)h.Length));
        return true;
    }
}

/// <summary>The content of an NLMSG_ERROR (an error, or an ack when Errno is 0) or of an NLMSG_DONE carrying an error.</summary>
/// <param name="Errno">Positive errno; 0 for an ack.</param>
/// <param name="RequestHeader">The header of the request this answers (from struct nlmsgerr).</param>
/// <param name="Message">NLMSGERR_ATTR_MSG, if present.</param>
/// <param name="Offset">NLMSGERR_ATTR_OFFS, if present.</param>
public readonly record struct NetlinkError(int Errno, NetlinkMessageHeader RequestHeader, string? Message, int? Offset)
{
    /// <summary>
    /// Decodes struct nlmsgerr { int error; struct nlmsghdr msg; } followed, unless NLM_F_CAPPED is
    /// set, by the rest of the request, and then (NLM_F_ACK_TLVS) the extended-ack attributes.
    /// </summary>
    public static NetlinkError Decode(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < SizeofNlmsgerr)
        {
            throw new NetlinkParseException("NLMSG_ERROR", $"payload of {p.Length} bytes is shorter than struct nlmsgerr ({SizeofNlmsgerr})", NetlinkMessageHeader.Size);
        }

        int error = BinaryPrimitives.ReadInt32LittleEndian(p);
        var req = NetlinkMessageHeader.ReadLittleEndian(p[4..]);
        string? msg = null;
        int? offs = null;
        if (m.Header.HasFlag(NLM_F_ACK_TLVS))
        {
            // The echoed request is whole unless capped; its nlmsg_len says how long it is. Checked
            // before any arithmetic: a lying nlmsg_len (e.g. 0x80000000) must not wrap the offset.
            bool capped = m.Header.HasFlag(NLM_F_CAPPED);
            if (!capped && (req.Length < NetlinkMessageHeader.Size || req.Length > p.Length - 4))
            {
                throw new NetlinkParseException("NLMSG_ERROR", $"echoed request has nlmsg_len {req.Length} but the {p.Length}-byte payload holds {p.Length - 4} bytes after the error code", NetlinkMessageHeader.Size + 4);
            }

            int tlvStart = capped ? SizeofNlmsgerr : 4 + Align.NlmsgAlign((int)req.Length);
            if (tlvStart > p.Length)
            {
                throw new NetlinkParseException("NLMSG_ERROR", $"echoed request with nlmsg_len {req.Length} runs past the {p.Length}-byte payload", NetlinkMessageHeader.Size + 4);
            }

            var r = new AttributeReader(m.Payload[tlvStart..], "NLMSG_ERROR extended ack");
            while (r.Next())
            {
                switch (r.Current.Type)
                {
                    case NLMSGERR_ATTR_MSG:
                        msg = r.Current.String();
                        break;
                    case NLMSGERR_ATTR_OFFS:
                        offs = (int)r.Current.U32();
                        break;
                    default:
                        break;
                }
            }
        }

        return new NetlinkError(-error, req, msg, offs);
    }

    /// <summary>NLMSG_DONE carries an int (0, or a negative errno for a failed dump), then ext-ack TLVs when NLM_F_ACK_TLVS is set.</summary>
    public static NetlinkError DecodeDone(NetlinkMessage m)
    {
        ReadOnlySpan<byte> p = m.Payload.Span;
        if (p.Length < 4)
        {
            return new NetlinkError(0, default, null, null);
        }

        int error = BinaryPrimitives.ReadInt32LittleEndian(p);
        string? msg = null;
        if (m.Header.HasFlag(NLM_F_ACK_TLVS))
        {
            var r = new AttributeReader(m.Payload[4..], "NLMSG_DONE extended ack");
            while (r.Next())
            {
                if (r.Current.Type == NLMSGERR_ATTR_MSG)
                {
                    msg = r.Current.String();
                }
            }
        }

        return new NetlinkError(-error, default, msg, null);
    }
}
