using System.Buffers.Binary;
using System.Runtime.Versioning;
using Tmds.Linux;
using static MobilityAgents.Netlink.NetlinkConstants;

namespace MobilityAgents.Netlink;

/// <summary>Options of a netlink socket.</summary>
public sealed record NetlinkSocketOptions
{
    /// <summary>Kernel receive buffer (SO_RCVBUFFORCE when root, else SO_RCVBUF). Large enough for pipelined acks and event bursts.</summary>
    public int ReceiveBufferBytes { get; init; } = 4 << 20;

    /// <summary>Kernel send buffer.</summary>
    public int SendBufferBytes { get; init; } = 1 << 20;

    /// <summary>Multicast groups to join (RTNLGRP_* numbers), for event sockets.</summary>
    public IReadOnlyList<uint> Groups { get; init; } = [];

    /// <summary>Receive timeout; null blocks. Event readers use a short one to notice cancellation.</summary>
    public TimeSpan? ReceiveTimeout { get; init; }
}

/// <summary>
/// A netlink socket bound to a port id, in one network namespace. Every request carries a fresh
/// sequence number and NLM_F_ACK; every reply is checked for port id and sequence number.
/// NETLINK_EXT_ACK, NETLINK_CAP_ACK and NETLINK_GET_STRICT_CHK are on. Requests on one socket are
/// serialised (one at a time); use one socket per concurrent user.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed unsafe class NetlinkSocket : IDisposable
{
    private const int ReceiveBufferSize = 1 << 18; // larger than any single rtnetlink skb (dumps are <= 32 KiB)
    private const int MSG_TRUNC = 0x20;
    private readonly int _fd;
    private readonly byte[] _receive = new byte[ReceiveBufferSize];
    private readonly Lock _lock = new();
    private uint _sequence;
    private bool _disposed;

    private NetlinkSocket(int fd, uint portId, int protocol, string netns)
    {
        _fd = fd;
        PortId = portId;
        Protocol = protocol;
        Namespace = netns;
        // Start from a time-derived value so replies to an earlier process's socket cannot be mistaken for ours.
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>The port id the kernel assigned at bind (nl_pid).</summary>
    public uint PortId { get; }

    /// <summary>The netlink protocol (NETLINK_ROUTE = 0).</summary>
    public int Protocol { get; }

    /// <summary>The name of the network namespace the socket lives in.</summary>
    public string Namespace { get; }

    /// <summary>Opens a socket of <paramref name="protocol"/> inside <paramref name="netns"/> (default: the current namespace).</summary>
    public static NetlinkSocket Open(int protocol = NETLINK_ROUTE, NetworkNamespace? netns = null, NetlinkSocketOptions? options = null)
    {
        netns ??= NetworkNamespace.Current;
        options ??= new NetlinkSocketOptions();
        return netns.Run(() => Create(protocol, netns.Name, options));
    }

    private static NetlinkSocket Create(int protocol, string netns, NetlinkSocketOptions o)
    {
        int fd = LibC.socket(AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            throw new NetlinkSocketException($"socket(AF_NETLINK, SOCK_RAW, {protocol})", LibC.errno);
        }

        try
        {
            SetInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, "NETLINK_EXT_ACK");
            SetInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, "NETLINK_CAP_ACK");
            SetInt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1, "NETLINK_GET_STRICT_CHK");
            SetInt(fd, LibC.SOL_SOCKET, LibC.SO_SNDBUF, o.SendBufferBytes, "SO_SNDBUF");
            // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to the rmem_max-capped SO_RCVBUF.
            if (!TrySetInt(fd, LibC.SOL_SOCKET, LibC.SO_RCVBUFFORCE, o.ReceiveBufferBytes))
            {
                SetInt(fd, LibC.SOL_SOCKET, LibC.SO_RCVBUF, o.ReceiveBufferBytes, "SO_RCVBUF");
            }

            if (o.ReceiveTimeout is { } t)
            {
                long us = (long)(t.TotalMilliseconds * 1000);
                long* tv = stackalloc long[2] { us / 1_000_000, us % 1_000_000 }; // struct timeval { tv_sec; tv_usec; }
                if (LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, tv, 2 * sizeof(long)) != 0)
                {
                    throw new NetlinkSocketException("setsockopt SO_RCVTIMEO", LibC.errno);
                }
            }

            byte* sa = stackalloc byte[SizeofSockaddrNl];
            new Span<byte>(sa, SizeofSockaddrNl).Clear();
            *(ushort*)sa = AF_NETLINK; // nl_family; nl_pid 0: the kernel picks; nl_groups 0: join below
            if (LibC.bind(fd, (sockaddr*)sa, SizeofSockaddrNl) != 0)
            {
                throw new NetlinkSocketException("bind(AF_NETLINK)", LibC.errno);
            }

            socklen_t len = SizeofSockaddrNl;
            if (LibC.getsockname(fd, (sockaddr*)sa, &len) != 0)
            {
                throw new NetlinkSocketException("getsockname(AF_NETLINK)", LibC.errno);
            }

            uint portId = *(uint*)(sa + 4);
            foreach (uint g in o.Groups)
            {
                SetInt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, (int)g, $"NETLINK_ADD_MEMBERSHIP {g}");
            }

            return new NetlinkSocket(fd, portId, protocol, netns);
        }
        catch
        {
            LibC.close(fd);
            throw;
        }
    }

    private static bool TrySetInt(int fd, int level, int name, int value) => LibC.setsockopt(fd, level, name, &value, sizeof(int)) == 0;

    private static void SetInt(int fd, int level, int name, int value, string what)
    {
        if (!TrySetInt(fd, level, name, value))
        {
            throw new NetlinkSocketException($"setsockopt {what}", LibC.errno);
        }
    }

    /// <summary>
    /// Sends one request (built with sequence 0; this fills in the sequence number, NLM_F_REQUEST
    /// and NLM_F_ACK) and returns the replies before the ack, or for a dump every message up to
    /// NLMSG_DONE. A kernel error throws <see cref="NetlinkException"/> naming <paramref name="describe"/>();
    /// an interrupted dump throws <see cref="NetlinkDumpInterruptedException"/>.
    /// </summary>
    public List<NetlinkMessage> Execute(Span<byte> request, Func<string> describe)
    {
        ArgumentNullException.ThrowIfNull(describe);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            uint seq = Stamp(request);
            bool dump = (BinaryPrimitives.ReadUInt16LittleEndian(request[6..]) & NLM_F_DUMP) == NLM_F_DUMP;
            Send(request, describe);
            var replies = new List<NetlinkMessage>();
            bool interrupted = false;
            while (true)
            {
                // Parsed in place; a datagram is copied (once) only when it holds a reply to return.
                ReadOnlyMemory<byte> datagram = _receive.AsMemory(0, Receive(describe));
                byte[]? copy = null;
                var reader = new DatagramReader(datagram);
                while (reader.Next())
                {
                    NetlinkMessage m = reader.Current;
                    if (!IsOurs(m, seq))
                    {
                        continue;
                    }

                    interrupted |= m.Header.HasFlag(NLM_F_DUMP_INTR);
                    switch (m.Type)
                    {
                        case NLMSG_ERROR:
                            NetlinkError e = NetlinkError.Decode(m);
                            if (e.Errno != 0)
                            {
                                throw new NetlinkException(describe(), e.Errno, e.Message, e.Offset, seq);
                            }

                            if (!dump)
                            {
                                return replies;
                            }

                            break;
                        case NLMSG_DONE:
                            NetlinkError d = NetlinkError.DecodeDone(m);
                            if (d.Errno != 0)
                            {
                                throw new NetlinkException(describe(), d.Errno, d.Message, null, seq);
                            }

                            if (interrupted)
                            {
                                throw new NetlinkDumpInterruptedException(describe());
                            }

                            return replies;
                        case NLMSG_NOOP:
                            break;
                        case NLMSG_OVERRUN:
                            throw new NetlinkException(describe(), Errno.ENOBUFS, "NLMSG_OVERRUN: data lost", null, seq);
                        default:
                            // A dump's parts, or the single reply of a GET by index; the ack follows.
                            copy ??= datagram.ToArray();
                            replies.Add(new NetlinkMessage(m.Header, copy.AsMemory(reader.PayloadOffset, m.Payload.Length)));
                            break;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Sends many requests (each built with sequence 0, one after another in <paramref name="requests"/>,
    /// at the offsets in <paramref name="starts"/>), pipelined: up to <paramref name="window"/> in flight,
    /// several per sendmsg. Returns one entry per request: null on success, else the exception. Nothing
    /// stops at the first error (so a caller can report every failure and roll back what succeeded).
    /// </summary>
    public NetlinkException?[] ExecuteBatch(Span<byte> requests, IReadOnlyList<int> starts, Func<int, string> describe, int window = 128)
    {
        ArgumentNullException.ThrowIfNull(starts);
        ArgumentNullException.ThrowIfNull(describe);
        var results = new NetlinkException?[starts.Count];
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int next = 0;
            Func<string> describeNext = () => describe(next);
            while (next < starts.Count)
            {
                int count = Math.Min(window, starts.Count - next);
                uint first = 0;
                for (int i = 0; i < count; i++)
                {
                    uint s = Stamp(requests[starts[next + i]..]);
                    if (i == 0)
                    {
                        first = s;
                    }
                }

                int from = starts[next];
                int to = next + count < starts.Count ? starts[next + count] : requests.Length;
                // One sendmsg per chunk of requests: the kernel's rtnetlink_rcv processes every message in it.
                SendChunked(requests[from..to], describeNext);
                int pending = count;
                while (pending > 0)
                {
                    // Acks are parsed in place in the receive buffer: nothing is copied or kept.
                    var reader = new DatagramReader(_receive.AsMemory(0, Receive(describeNext)));
                    while (reader.Next())
                    {
                        NetlinkMessage m = reader.Current;
                        if (m.Header.PortId != PortId || m.Type != NLMSG_ERROR)
                        {
                            continue;
                        }

                        uint idx = m.Header.Sequence - first;
                        if (m.Header.Sequence < first)
                        {
                            // The sequence wrapped inside this window, and Stamp skipped 0.
                            idx--;
                        }

                        if (idx >= (uint)count)
                        {
                            continue; // stale
                        }

                        NetlinkError e = NetlinkError.Decode(m);
                        if (e.Errno != 0)
                        {
                            results[next + (int)idx] = new NetlinkException(describe(next + (int)idx), e.Errno, e.Message, e.Offset, m.Header.Sequence);
                        }

                        pending--;
                    }
                }

                next += count;
            }
        }

        return results;
    }

    private void SendChunked(Span<byte> data, Func<string> describe)
    {
        const int MaxChunk = 64 << 10;
        int offset = 0;
        while (offset < data.Length)
        {
            // Cut at a message boundary at or below MaxChunk.
            int end = offset;
            while (end < data.Length)
            {
                int len = Align.NlmsgAlign((int)BinaryPrimitives.ReadUInt32LittleEndian(data[end..]));
                if (end > offset && end + len - offset > MaxChunk)
                {
                    break;
                }

                end += len;
            }

            Send(data[offset..end], describe);
            offset = end;
        }
    }

    private uint Stamp(Span<byte> request)
    {
        if (request.Length < NetlinkMessageHeader.Size)
        {
            throw new ArgumentException("request shorter than a netlink header", nameof(request));
        }

        uint seq = ++_sequence;
        if (seq == 0)
        {
            seq = ++_sequence;
        }

        StampRequest(request, seq);
        return seq;
    }

    /// <summary>
    /// What every request carries on the wire: NLM_F_REQUEST | NLM_F_ACK added to the builder's
    /// flags, the sequence number, and nlmsg_pid 0 (addressed to the kernel). Separate so the
    /// golden-byte tests stamp a built request exactly as it is sent.
    /// </summary>
    internal static void StampRequest(Span<byte> request, uint sequence)
    {
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(request[6..]);
        BinaryPrimitives.WriteUInt16LittleEndian(request[6..], (ushort)(flags | NLM_F_REQUEST | NLM_F_ACK));
        BinaryPrimitives.WriteUInt32LittleEndian(request[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(request[12..], 0);
    }

    private bool IsOurs(NetlinkMessage m, uint seq)
    {
        if (m.Header.PortId != PortId)
        {
            throw new NetlinkParseException("netlink reply", $"reply addressed to port id {m.Header.PortId}, this socket is {PortId}", 12);
        }

        // Anything else is a late reply to an earlier request that was abandoned: skip it.
        return m.Header.Sequence == seq;
    }

    private void Send(ReadOnlySpan<byte> data, Func<string> describe)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                ssize_t n = LibC.send(_fd, p, data.Length, 0);
                if (n >= 0)
                {
                    return;
                }

                int errno = LibC.errno;
                if (errno != Errno.EINTR)
                {
                    throw new NetlinkSocketException($"send netlink request ({describe()})", errno);
                }
            }
        }
    }

    /// <summary>Receives one datagram into the socket's buffer and returns its length; the next receive overwrites it.</summary>
    private int Receive(Func<string> describe)
    {
        int n = ReceiveRaw(out int errno);
        if (n < 0)
        {
            throw new NetlinkSocketException($"recv netlink reply ({describe()})", errno);
        }

        return n;
    }

    /// <summary>
    /// Receives one datagram into the socket's buffer. Returns its length, or -1 with the errno
    /// (EAGAIN on a receive timeout, ENOBUFS when the kernel dropped messages for this socket).
    /// </summary>
    internal int ReceiveRaw(out int errno)
    {
        fixed (byte* p = _receive)
        {
            while (true)
            {
                ssize_t n = LibC.recv(_fd, p, _receive.Length, MSG_TRUNC);
                if (n >= 0)
                {
                    if (n > _receive.Length)
                    {
                        throw new NetlinkParseException("netlink datagram", $"datagram of {n} bytes truncated to {_receive.Length}", 0);
                    }

                    errno = 0;
                    return (int)n;
                }

                errno = LibC.errno;
                if (errno != Errno.EINTR)
                {
                    return -1;
                }
            }
        }
    }

    /// <summary>
    /// Reads the next datagram of events (for sockets that joined multicast groups). Returns the
    /// messages, an empty list on a receive timeout, or null when the kernel dropped events
    /// (ENOBUFS): the caller must resynchronise by dumping the state it tracks.
    /// </summary>
    public List<NetlinkMessage>? ReceiveEvents()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int n = ReceiveRaw(out int errno);
        if (n >= 0)
        {
            return MessageReader.ReadAll(_receive.AsMemory(0, n).ToArray());
        }

        return errno switch
        {
            Errno.EAGAIN => [],
            Errno.ENOBUFS => null,
            _ => throw new NetlinkSocketException("recv netlink events", errno),
        };
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _disposed = true;
                LibC.close(_fd);
            }
        }
    }
}
