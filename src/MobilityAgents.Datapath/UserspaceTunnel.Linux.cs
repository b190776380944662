using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MobilityAgents.Netlink;
using MobilityAgents.Rtnetlink;
using static MobilityAgents.Datapath.Native;

namespace MobilityAgents.Datapath;

/// <summary>
/// A userspace tunnel end for kernels without the ipip module. A TUN device (layer 3, no packet
/// info) carries the inner packets; a raw <c>socket(AF_INET, SOCK_RAW, IPPROTO_IPIP)</c> carries
/// RFC 2003 outer packets (the kernel writes the outer header, so it interoperates with a kernel
/// ipip link), and a UDP socket carries ipip-in-UDP (the inner packet as the whole payload, as the
/// kernel's FOU with ipproto 4 does) for laptops behind NAT.
/// <para>
/// Two dedicated threads move the packets: one TUN -> sockets (drains the TUN until EAGAIN or a
/// batch is full, then one sendmmsg per socket), one sockets -> TUN (recvmmsg batches). Both block
/// in poll(2) with an eventfd to stop them, use buffers allocated once, and look peers up in an
/// immutable snapshot swapped by <see cref="SetPeers"/>, so the packet path takes no lock and
/// allocates nothing.
/// </para>
/// <para>
/// Security: nothing decapsulated may carry a source its sender does not own. A raw ipip packet is
/// delivered only if its outer source is the OuterAddress of the ipip peer whose Inner holds the
/// inner source; a UDP data packet only if it came from the endpoint of the UDP peer whose Inner
/// holds the inner source (the fixed endpoint, or the one learned from an authenticated
/// keepalive: the only way an endpoint is ever learned).
/// </para>
/// <para>
/// Outer DF: both sockets use IP_MTU_DISCOVER = IP_PMTUDISC_DONT, so the outer header never has
/// DF set and an outer packet larger than the path MTU is fragmented (by this host or a router)
/// instead of dropped. Path-MTU ICMP is often filtered behind NAT, and a TUN MTU of 1480 (ipip)
/// or 1472 (udp) keeps outer packets at 1500 bytes, so fragmentation only happens on smaller paths.
/// </para>
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class UserspaceTunnel : IDisposable
{
    private const int TxBatch = 64;
    private const int RxBatch = 32;
    private const int RxBufferSize = 65536; // a reassembled outer packet can be up to 64 KiB
    private const int SocketBufferBytes = 4 << 20;
    private const long DropLogIntervalMs = 10_000;

    private readonly UserspaceTunnelOptions _options;
    private readonly ILogger _log;
    private readonly TunDevice _tun;
    private readonly int _tunFd;
    private readonly int _rawFd;
    private readonly int _udpFd;
    private readonly int _wakeFd;
    private readonly int _txBufferSize;
    private readonly CounterBlock _txCounters = new();
    private readonly CounterBlock _rxCounters = new();
    private readonly Lock _peersLock = new();
    private readonly Thread _txThread;
    private readonly Thread _rxThread;
    private readonly ITimer? _keepaliveTimer;
    private volatile PeerTable _peers = PeerTable.Empty;
    private volatile bool _stopping;
    private long _keepaliveCounter;
    private long _keepalivesSent;
    private long _nextDropLogMs;
    private int _disposed;

    private UserspaceTunnel(UserspaceTunnelOptions options, ILogger log, TunDevice tun, int tunIndex, int rawFd, int udpFd, ushort udpPort, int wakeFd)
    {
        _options = options;
        _log = log;
        _tun = tun;
        _tunFd = (int)tun.Handle.DangerousGetHandle();
        TunIndex = tunIndex;
        _rawFd = rawFd;
        _udpFd = udpFd;
        UdpPort = udpPort;
        _wakeFd = wakeFd;
        _txBufferSize = Math.Max(options.Mtu, 1500) + 64;
        _keepaliveCounter = (options.Time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10; // Unix time in microseconds
        _txThread = new Thread(TxLoop) { IsBackground = true, Name = "tun->net " + tun.Name };
        _rxThread = new Thread(RxLoop) { IsBackground = true, Name = "net->tun " + tun.Name };
        _txThread.Start();
        _rxThread.Start();
        if (udpFd >= 0)
        {
            _keepaliveTimer = options.Time.CreateTimer(_ => SendKeepalivesNow(), null, options.KeepaliveInterval, options.KeepaliveInterval);
        }
    }

    /// <summary>The TUN link's name.</summary>
    public string TunName => _tun.Name;

    /// <summary>The TUN link's interface index (in the tunnel's namespace).</summary>
    public int TunIndex { get; }

    /// <summary>The UDP socket's bound port (the ephemeral port resolved); 0 without UDP.</summary>
    public ushort UdpPort { get; }

    /// <summary>Home agent side: raised (on a thread-pool thread) when an authenticated keepalive moved a peer's endpoint: (peer id, endpoint).</summary>
    public event Action<string, IPEndPoint>? EndpointLearned;

    /// <summary>A snapshot of the counters.</summary>
    public UserspaceTunnelCounters Counters
    {
        get
        {
            long[] drops = new long[UserspaceTunnelCounters.DropCount];
            for (int i = 0; i < drops.Length; i++)
            {
                drops[i] = Volatile.Read(ref _txCounters.Drops[i]) + Volatile.Read(ref _rxCounters.Drops[i]);
            }

            return new UserspaceTunnelCounters
            {
                TxPackets = Volatile.Read(ref _txCounters.Packets),
                TxBytes = Volatile.Read(ref _txCounters.Bytes),
                RxPackets = Volatile.Read(ref _rxCounters.Packets),
                RxBytes = Volatile.Read(ref _rxCounters.Bytes),
                KeepalivesSent = Interlocked.Read(ref _keepalivesSent),
                KeepalivesAccepted = Volatile.Read(ref _rxCounters.KeepalivesAccepted),
                AcksAccepted = Volatile.Read(ref _rxCounters.AcksAccepted),
                Drops = drops,
            };
        }
    }

    /// <summary>
    /// Creates the TUN link (MTU, alias, up) and the sockets in the options' namespace and starts
    /// the datapath threads, with no peers. On failure throws an exception naming the operation
    /// and errno, and leaves nothing behind.
    /// </summary>
    public static UserspaceTunnel Start(UserspaceTunnelOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        LinkService.ValidateName(options.TunName);
        if (options.Mtu is < 68 or > 65535)
        {
            throw new ArgumentException($"Mtu {options.Mtu} is outside 68..65535", nameof(options));
        }

        if (options.LocalAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"LocalAddress {options.LocalAddress} is not IPv4", nameof(options));
        }

        if (!options.EnableIpip && !options.EnableUdp)
        {
            throw new ArgumentException("neither EnableIpip nor EnableUdp is set", nameof(options));
        }

        if (options.KeepaliveInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"KeepaliveInterval {options.KeepaliveInterval} must be positive", nameof(options));
        }

        ILogger log = logger ?? NullLogger.Instance;
        NetworkNamespace ns = options.Namespace ?? NetworkNamespace.Current;
        TunDevice tun = TunDevice.Create(options.TunName, ns);
        int rawFd = -1, udpFd = -1, wakeFd = -1;
        try
        {
            int index;
            using (RouteNetlink rt = RouteNetlink.Open(ns))
            {
                index = rt.Links.IndexOf(tun.Name);
                rt.Links.SetMtu(index, options.Mtu);
                if (options.Alias is not null)
                {
                    rt.Links.SetAlias(index, options.Alias);
                }

                rt.Links.SetUp(index);
            }

            int tunFd = (int)tun.Handle.DangerousGetHandle();
            int flags = Fcntl(tunFd, F_GETFL, 0);
            if (flags < 0 || Fcntl(tunFd, F_SETFL, flags | O_NONBLOCK) < 0)
            {
                throw new DatapathException($"fcntl O_NONBLOCK on TUN {tun.Name}", Marshal.GetLastPInvokeError());
            }

            uint local = PeerTable.ToHost(options.LocalAddress);
            ushort port = 0;
            (rawFd, udpFd, port) = ns.Run(() =>
            {
                int raw = -1, udp = -1;
                try
                {
                    if (options.EnableIpip)
                    {
                        raw = OpenSocket(SOCK_RAW, IPPROTO_IPIP, local, 0, out _, "socket(AF_INET, SOCK_RAW, IPPROTO_IPIP)");
                    }

                    ushort bound = 0;
                    if (options.EnableUdp)
                    {
                        udp = OpenSocket(SOCK_DGRAM, IPPROTO_UDP, local, options.UdpPort, out bound, "socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)");
                    }

                    return (raw, udp, bound);
                }
                catch
                {
                    CloseIfOpen(raw);
                    CloseIfOpen(udp);
                    throw;
                }
            });

            wakeFd = EventFd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (wakeFd < 0)
            {
                throw new DatapathException("eventfd", Marshal.GetLastPInvokeError());
            }

            var tunnel = new UserspaceTunnel(options, log, tun, index, rawFd, udpFd, port, wakeFd);
            Log.Started(log, tun.Name, index, options.Mtu, ns.Name, options.EnableIpip, options.EnableUdp, port, options.LocalAddress);
            return tunnel;
        }
        catch
        {
            CloseIfOpen(rawFd);
            CloseIfOpen(udpFd);
            CloseIfOpen(wakeFd);
            tun.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Replaces the peer table with an immutable snapshot (atomic swap). A peer whose Id and
    /// Keepalive.Token are unchanged keeps its learned endpoint and replay counter. Throws
    /// <see cref="ArgumentException"/> on duplicate ids or tokens, overlapping Inner networks,
    /// non-IPv4 addresses, keys that are not 32 bytes, or an encapsulation whose socket is not open.
    /// Laptop side: sends keepalives to the UDP peers with credentials.
    /// </summary>
    public void SetPeers(IEnumerable<TunnelPeer> peers)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        PeerTable next;
        lock (_peersLock)
        {
            next = PeerTable.Build(peers, _peers, _options);
            _peers = next;
        }

        Log.PeersSet(_log, TunName, next.All.Count, string.Join(", ", next.All.Select(e => $"{e.Peer.Id} {e.Peer.Inner} {e.Peer.Encapsulation} {e.Peer.OuterAddress}{(e.FixedEndpoint != 0 ? ":" + e.Peer.UdpPort : "")}")));
        SendKeepalivesNow();
    }

    /// <summary>
    /// Where a UDP peer's packets go: home agent side, the endpoint learned from its last
    /// authenticated keepalive (null until then); a peer with a fixed endpoint, that endpoint.
    /// Null for ipip peers and unknown ids.
    /// </summary>
    public IPEndPoint? EndpointOf(string peerId)
    {
        PeerEntry? e = _peers.ById(peerId);
        if (e is null || !e.Udp)
        {
            return null;
        }

        long packed = e.CurrentEndpoint;
        return packed == 0 ? null : PeerTable.Unpack(packed);
    }

    /// <summary>Laptop side: when the last authenticated ack from the peer's endpoint arrived (null: none yet).</summary>
    public DateTimeOffset? LastAckOf(string peerId)
    {
        PeerEntry? e = _peers.ById(peerId);
        long ticks = e is null ? 0 : Volatile.Read(ref e.State.LastAckTicks);
        return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
    }

    /// <summary>Laptop side: sends a keepalive now to every UDP peer with a fixed endpoint and credentials (after (re)registration or a move).</summary>
    public unsafe void SendKeepalivesNow()
    {
        if (_udpFd < 0 || _disposed != 0)
        {
            return;
        }

        byte* message = stackalloc byte[KeepaliveMessage.Length];
        foreach (PeerEntry e in _peers.All)
        {
            if (!e.Udp || e.FixedEndpoint == 0 || e.Peer.Keepalive is not { } k)
            {
                continue;
            }

            ulong counter = (ulong)Interlocked.Increment(ref _keepaliveCounter);
            KeepaliveMessage.Write(new Span<byte>(message, KeepaliveMessage.Length), KeepaliveMessage.TypeKeepalive, k.Token, counter, k.Key);
            SockaddrIn to = Address((uint)(e.FixedEndpoint >> 16), (ushort)e.FixedEndpoint);
            if (SendTo(_udpFd, message, KeepaliveMessage.Length, 0, &to, (uint)sizeof(SockaddrIn)) < 0)
            {
                Log.IoError(_log, TunName, $"keepalive to {e.Peer.OuterAddress}:{e.Peer.UdpPort}", Errno.Name(Marshal.GetLastPInvokeError()));
            }
            else
            {
                Interlocked.Increment(ref _keepalivesSent);
            }
        }
    }

    /// <summary>Stops the threads and closes the descriptors; the TUN link disappears with its descriptor.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _keepaliveTimer?.Dispose();
        _stopping = true;
        Wake();
        bool stopped = _txThread.Join(TimeSpan.FromSeconds(5)) & _rxThread.Join(TimeSpan.FromSeconds(5));
        if (!stopped)
        {
            Log.ThreadStuck(_log, TunName, 5);
            return; // descriptors stay open rather than be reused under a running thread
        }

        CloseIfOpen(_rawFd);
        CloseIfOpen(_udpFd);
        CloseIfOpen(_wakeFd);
        _tun.Dispose();
        Log.Stopped(_log, TunName, Counters);
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        _ = Write(_wakeFd, &one, sizeof(ulong));
    }

    private static unsafe int OpenSocket(int type, int protocol, uint local, ushort port, out ushort boundPort, string what)
    {
        int fd = Socket(AF_INET, type | SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            throw new DatapathException(what, Marshal.GetLastPInvokeError());
        }

        try
        {
            int dont = IP_PMTUDISC_DONT;
            if (SetSockOpt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(int)) < 0)
            {
                throw new DatapathException($"{what}: setsockopt IP_MTU_DISCOVER IP_PMTUDISC_DONT", Marshal.GetLastPInvokeError());
            }

            int size = SocketBufferBytes;
            // The *FORCE variants pass net.core.{r,w}mem_max as root; fall back to the capped ones.
            if (SetSockOpt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(int)) < 0)
            {
                _ = SetSockOpt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(int));
            }

            if (SetSockOpt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(int)) < 0)
            {
                _ = SetSockOpt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(int));
            }

            // The outer address may not be configured yet (a gateway whose uplink comes up later):
            // bind to it anyway, as a kernel ipip link's "local" needs no address either.
            int on = 1;
            if (SetSockOpt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(int)) < 0)
            {
                throw new DatapathException($"{what}: setsockopt IP_FREEBIND", Marshal.GetLastPInvokeError());
            }

            SockaddrIn address = Address(local, port);
            if (Bind(fd, &address, (uint)sizeof(SockaddrIn)) < 0)
            {
                throw new DatapathException($"{what}: bind {new IPAddress(ToBigEndian(local))}:{port}", Marshal.GetLastPInvokeError());
            }

            SockaddrIn bound;
            uint length = (uint)sizeof(SockaddrIn);
            if (GetSockName(fd, &bound, &length) < 0)
            {
                throw new DatapathException($"{what}: getsockname", Marshal.GetLastPInvokeError());
            }

            boundPort = ToBigEndian(bound.PortBE);
            return fd;
        }
        catch
        {
            _ = Close(fd);
            throw;
        }
    }

    private static void CloseIfOpen(int fd)
    {
        if (fd >= 0)
        {
            _ = Close(fd);
        }
    }

    // ---------------------------------------------------------------- TUN -> outer

    private unsafe void TxLoop()
    {
        int bufferSize = _txBufferSize;
        byte* buffers = (byte*)NativeMemory.AlignedAlloc((nuint)(TxBatch * bufferSize), 64);
        var raw = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(TxBatch * sizeof(MMsgHdr)));
        var udp = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(TxBatch * sizeof(MMsgHdr)));
        var iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * TxBatch * sizeof(IoVec)));
        var addrs = (SockaddrIn*)NativeMemory.AllocZeroed((nuint)(2 * TxBatch * sizeof(SockaddrIn)));
        for (int i = 0; i < TxBatch; i++)
        {
            raw[i].Header.Iov = &iovs[i];
            raw[i].Header.IovLength = 1;
            raw[i].Header.Name = &addrs[i];
            raw[i].Header.NameLength = (uint)sizeof(SockaddrIn);
            udp[i].Header.Iov = &iovs[TxBatch + i];
            udp[i].Header.IovLength = 1;
            udp[i].Header.Name = &addrs[TxBatch + i];
            udp[i].Header.NameLength = (uint)sizeof(SockaddrIn);
        }

        PollFd* fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = _tunFd, Events = POLLIN };
        fds[1] = new PollFd { Fd = _wakeFd, Events = POLLIN };
        CounterBlock c = _txCounters;
        try
        {
            while (!_stopping)
            {
                if (Poll(fds, 2, -1) < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR)
                    {
                        continue;
                    }

                    throw new DatapathException("poll (TUN)", errno);
                }

                if (_stopping || fds[1].Revents != 0)
                {
                    break;
                }

                bool drained = false;
                while (!drained && !_stopping)
                {
                    PeerTable table = _peers;
                    int used = 0, rawCount = 0, udpCount = 0;
                    while (used < TxBatch)
                    {
                        byte* p = buffers + (used * bufferSize);
                        nint n = Read(_tunFd, p, (nuint)bufferSize);
                        if (n < 0)
                        {
                            int errno = Marshal.GetLastPInvokeError();
                            if (errno == EINTR)
                            {
                                continue;
                            }

                            if (errno != EAGAIN)
                            {
                                Log.IoError(_log, TunName, "read TUN", Errno.Name(errno));
                            }

                            drained = true;
                            break;
                        }

                        if (n < 20 || (p[0] >> 4) != 4)
                        {
                            // IPv6 (router solicitations on the TUN, ...): no peer carries it.
                            c.Drop(n > 0 && (p[0] >> 4) == 6 ? DropReason.NoPeer : DropReason.Malformed);
                            continue;
                        }

                        PeerEntry? peer = table.Route(BinaryPrimitives.ReadUInt32BigEndian(new ReadOnlySpan<byte>(p + 16, 4)));
                        if (peer is null)
                        {
                            c.Drop(DropReason.NoPeer);
                            continue;
                        }

                        MMsgHdr* m;
                        if (peer.Udp)
                        {
                            long endpoint = peer.CurrentEndpoint;
                            if (endpoint == 0)
                            {
                                c.Drop(DropReason.NoEndpointYet);
                                continue;
                            }

                            m = &udp[udpCount++];
                            *(SockaddrIn*)m->Header.Name = Address((uint)(endpoint >> 16), (ushort)endpoint);
                        }
                        else
                        {
                            m = &raw[rawCount++];
                            *(SockaddrIn*)m->Header.Name = Address(peer.Outer, 0);
                        }

                        m->Header.Iov->Base = p;
                        m->Header.Iov->Length = (nuint)n;
                        used++;
                    }

                    if (rawCount > 0)
                    {
                        SendBatch(_rawFd, raw, rawCount, c);
                    }

                    if (udpCount > 0)
                    {
                        SendBatch(_udpFd, udp, udpCount, c);
                    }
                }
            }
        }
        catch (Exception e)
        {
            Log.ThreadFailed(_log, e, TunName, "tun->net");
        }
        finally
        {
            NativeMemory.AlignedFree(buffers);
            NativeMemory.Free(raw);
            NativeMemory.Free(udp);
            NativeMemory.Free(iovs);
            NativeMemory.Free(addrs);
        }
    }

    private unsafe void SendBatch(int fd, MMsgHdr* messages, int count, CounterBlock c)
    {
        int sent = 0;
        while (sent < count)
        {
            int n = SendMMsg(fd, messages + sent, (uint)(count - sent), 0);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }

                // The first message of the rest was refused (EMSGSIZE, EHOSTUNREACH, ...): skip it.
                c.Drop(DropReason.SendError);
                if (DropLogDue())
                {
                    Log.Dropping(_log, TunName, DropReason.SendError, c.Drops[(int)DropReason.SendError], Errno.Name(errno));
                }

                sent++;
                continue;
            }

            for (int i = sent; i < sent + n; i++)
            {
                c.Packets++;
                c.Bytes += (long)messages[i].Header.Iov->Length;
            }

            sent += n;
        }
    }

    // ---------------------------------------------------------------- outer -> TUN

    private unsafe void RxLoop()
    {
        byte* rawBuffers = null, udpBuffers = null;
        MMsgHdr* rawMsgs = null, udpMsgs = null;
        IoVec* iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(2 * RxBatch * sizeof(IoVec)));
        SockaddrIn* addrs = (SockaddrIn*)NativeMemory.AllocZeroed((nuint)(2 * RxBatch * sizeof(SockaddrIn)));
        if (_rawFd >= 0)
        {
            rawBuffers = (byte*)NativeMemory.AlignedAlloc(RxBatch * RxBufferSize, 64);
            rawMsgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(RxBatch * sizeof(MMsgHdr)));
            SetUpReceive(rawMsgs, rawBuffers, iovs, addrs);
        }

        if (_udpFd >= 0)
        {
            udpBuffers = (byte*)NativeMemory.AlignedAlloc(RxBatch * RxBufferSize, 64);
            udpMsgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(RxBatch * sizeof(MMsgHdr)));
            SetUpReceive(udpMsgs, udpBuffers, iovs + RxBatch, addrs + RxBatch);
        }

        PollFd* fds = stackalloc PollFd[3];
        fds[0] = new PollFd { Fd = _rawFd, Events = POLLIN }; // poll ignores negative descriptors
        fds[1] = new PollFd { Fd = _udpFd, Events = POLLIN };
        fds[2] = new PollFd { Fd = _wakeFd, Events = POLLIN };
        try
        {
            while (!_stopping)
            {
                if (Poll(fds, 3, -1) < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR)
                    {
                        continue;
                    }

                    throw new DatapathException("poll (sockets)", errno);
                }

                if (_stopping || fds[2].Revents != 0)
                {
                    break;
                }

                if (fds[0].Revents != 0)
                {
                    Receive(_rawFd, rawMsgs, udp: false);
                }

                if (fds[1].Revents != 0)
                {
                    Receive(_udpFd, udpMsgs, udp: true);
                }
            }
        }
        catch (Exception e)
        {
            Log.ThreadFailed(_log, e, TunName, "net->tun");
        }
        finally
        {
            NativeMemory.AlignedFree(rawBuffers);
            NativeMemory.AlignedFree(udpBuffers);
            NativeMemory.Free(rawMsgs);
            NativeMemory.Free(udpMsgs);
            NativeMemory.Free(iovs);
            NativeMemory.Free(addrs);
        }
    }

    private static unsafe void SetUpReceive(MMsgHdr* messages, byte* buffers, IoVec* iovs, SockaddrIn* addrs)
    {
        for (int i = 0; i < RxBatch; i++)
        {
            iovs[i].Base = buffers + ((long)i * RxBufferSize);
            iovs[i].Length = RxBufferSize;
            messages[i].Header.Iov = &iovs[i];
            messages[i].Header.IovLength = 1;
            messages[i].Header.Name = &addrs[i];
        }
    }

    private unsafe void Receive(int fd, MMsgHdr* messages, bool udp)
    {
        while (!_stopping)
        {
            for (int i = 0; i < RxBatch; i++)
            {
                messages[i].Header.NameLength = (uint)sizeof(SockaddrIn);
                messages[i].Header.Flags = 0;
            }

            int n = RecvMMsg(fd, messages, RxBatch, MSG_DONTWAIT, null);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }

                if (errno != EAGAIN)
                {
                    Log.IoError(_log, TunName, udp ? "recvmmsg UDP" : "recvmmsg IPPROTO_IPIP", Errno.Name(errno));
                }

                return;
            }

            PeerTable table = _peers;
            for (int i = 0; i < n; i++)
            {
                ref MMsgHdr m = ref messages[i];
                byte* p = (byte*)m.Header.Iov->Base;
                int length = (int)m.Length;
                if ((m.Header.Flags & MSG_TRUNC) != 0)
                {
                    _rxCounters.Drop(DropReason.Malformed);
                    continue;
                }

                var from = (SockaddrIn*)m.Header.Name;
                if (udp)
                {
                    ReceiveUdp(table, p, length, from);
                }
                else
                {
                    ReceiveIpip(table, p, length);
                }
            }

            if (n < RxBatch)
            {
                return;
            }
        }
    }

    private unsafe void ReceiveIpip(PeerTable table, byte* p, int length)
    {
        int ihl = (p[0] & 0xF) * 4;
        if (length < 20 || (p[0] >> 4) != 4 || ihl < 20 || length < ihl + 20)
        {
            _rxCounters.Drop(DropReason.Malformed);
            return;
        }

        uint outerSource = BinaryPrimitives.ReadUInt32BigEndian(new ReadOnlySpan<byte>(p + 12, 4));
        byte* inner = p + ihl;
        if (!TryInner(inner, length - ihl, out int innerLength, out uint innerSource))
        {
            return;
        }

        PeerEntry? peer = table.Route(innerSource);
        if (peer is null || peer.Udp || peer.Outer != outerSource)
        {
            _rxCounters.Drop(DropReason.SpoofedSource);
            if (DropLogDue())
            {
                Log.Dropping(_log, TunName, DropReason.SpoofedSource, _rxCounters.Drops[(int)DropReason.SpoofedSource], $"{new IPAddress(ToBigEndian(outerSource))} (inner {new IPAddress(ToBigEndian(innerSource))})");
            }

            return;
        }

        Deliver(inner, innerLength);
    }

    private unsafe void ReceiveUdp(PeerTable table, byte* p, int length, SockaddrIn* from)
    {
        if (length == 0)
        {
            _rxCounters.Drop(DropReason.Malformed);
            return;
        }

        long sender = PeerTable.Pack(ToBigEndian(from->AddressBE), ToBigEndian(from->PortBE));
        if (p[0] == 0)
        {
            ReceiveControl(table, new ReadOnlySpan<byte>(p, length), sender, from);
            return;
        }

        if (!TryInner(p, length, out int innerLength, out uint innerSource))
        {
            return;
        }

        PeerEntry? peer = table.Route(innerSource);
        if (peer is null || !peer.Udp || peer.CurrentEndpoint != sender)
        {
            _rxCounters.Drop(DropReason.SpoofedSource);
            if (DropLogDue())
            {
                Log.Dropping(_log, TunName, DropReason.SpoofedSource, _rxCounters.Drops[(int)DropReason.SpoofedSource], $"{PeerTable.Unpack(sender)} (inner {new IPAddress(ToBigEndian(innerSource))})");
            }

            return;
        }

        Deliver(p, innerLength);
    }

    private unsafe void ReceiveControl(PeerTable table, ReadOnlySpan<byte> message, long sender, SockaddrIn* from)
    {
        if (!KeepaliveMessage.TryParse(message, out byte type, out ulong token, out ulong counter)
            || table.ByToken(token) is not { Udp: true } peer
            || !KeepaliveMessage.Verify(message, peer.Peer.Keepalive!.Key))
        {
            _rxCounters.Drop(DropReason.BadKeepalive);
            if (DropLogDue())
            {
                Log.Dropping(_log, TunName, DropReason.BadKeepalive, _rxCounters.Drops[(int)DropReason.BadKeepalive], PeerTable.Unpack(sender).ToString());
            }

            return;
        }

        PeerState state = peer.State;
        if (type == KeepaliveMessage.TypeKeepalive && peer.FixedEndpoint == 0)
        {
            // Home agent side: the one way an endpoint is learned.
            if (counter <= state.LastCounter)
            {
                _rxCounters.Drop(DropReason.ReplayedKeepalive);
                return;
            }

            state.LastCounter = counter;
            long previous = Interlocked.Exchange(ref state.Endpoint, sender);
            _rxCounters.KeepalivesAccepted++;
            byte* ack = stackalloc byte[KeepaliveMessage.Length];
            KeepaliveMessage.Write(new Span<byte>(ack, KeepaliveMessage.Length), KeepaliveMessage.TypeAck, token, counter, peer.Peer.Keepalive.Key);
            if (SendTo(_udpFd, ack, KeepaliveMessage.Length, 0, from, (uint)sizeof(SockaddrIn)) < 0)
            {
                Log.IoError(_log, TunName, $"keepalive ack to {PeerTable.Unpack(sender)}", Errno.Name(Marshal.GetLastPInvokeError()));
            }

            if (previous != sender)
            {
                IPEndPoint endpoint = PeerTable.Unpack(sender);
                string id = peer.Peer.Id;
                Log.EndpointLearned(_log, TunName, id, endpoint, previous == 0 ? "none" : PeerTable.Unpack(previous).ToString());
                if (EndpointLearned is { } handler)
                {
                    ThreadPool.QueueUserWorkItem(_ => handler(id, endpoint));
                }
            }
        }
        else if (type == KeepaliveMessage.TypeAck && peer.FixedEndpoint != 0 && peer.FixedEndpoint == sender)
        {
            // Laptop side: an ack from the home agent's fixed endpoint.
            if (counter <= state.LastCounter)
            {
                _rxCounters.Drop(DropReason.ReplayedKeepalive);
                return;
            }

            state.LastCounter = counter;
            Volatile.Write(ref state.LastAckTicks, _options.Time.GetUtcNow().UtcTicks);
            _rxCounters.AcksAccepted++;
        }
        else
        {
            _rxCounters.Drop(DropReason.BadKeepalive);
        }
    }

    /// <summary>Checks an inner IPv4 header; its total length and source address (host order).</summary>
    private unsafe bool TryInner(byte* inner, int available, out int length, out uint source)
    {
        length = 0;
        source = 0;
        if (available < 20 || (inner[0] >> 4) != 4)
        {
            _rxCounters.Drop(DropReason.Malformed);
            return false;
        }

        int ihl = (inner[0] & 0xF) * 4;
        length = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(inner + 2, 2));
        if (ihl < 20 || length < ihl || length > available)
        {
            _rxCounters.Drop(DropReason.Malformed);
            return false;
        }

        source = BinaryPrimitives.ReadUInt32BigEndian(new ReadOnlySpan<byte>(inner + 12, 4));
        return true;
    }

    private unsafe void Deliver(byte* packet, int length)
    {
        nint n = Write(_tunFd, packet, (nuint)length);
        if (n < 0)
        {
            _rxCounters.Drop(DropReason.SendError);
            int errno = Marshal.GetLastPInvokeError();
            if (DropLogDue())
            {
                Log.Dropping(_log, TunName, DropReason.SendError, _rxCounters.Drops[(int)DropReason.SendError], "write TUN " + Errno.Name(errno));
            }

            return;
        }

        _rxCounters.Packets++;
        _rxCounters.Bytes += length;
    }

    /// <summary>At most one drop warning per 10 s per tunnel (no log per packet).</summary>
    private bool DropLogDue()
    {
        long now = Environment.TickCount64;
        long next = Volatile.Read(ref _nextDropLogMs);
        return now >= next && Interlocked.CompareExchange(ref _nextDropLogMs, now + DropLogIntervalMs, next) == next;
    }
}
