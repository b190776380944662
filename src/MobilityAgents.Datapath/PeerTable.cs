using System.Buffers.Binary;
using System.Collections.Frozen;
using System.Net;
using System.Net.Sockets;

namespace MobilityAgents.Datapath;

/// <summary>
/// What a peer learns at run time; it survives <see cref="UserspaceTunnel.SetPeers"/> while the
/// peer's Id and keepalive token stay the same. Written only by the receive thread (endpoint,
/// counters, ack time), read by any thread.
/// </summary>
internal sealed class PeerState
{
    /// <summary>The learned endpoint, packed by <see cref="PeerTable.Pack"/>; 0 = none yet.</summary>
    public long Endpoint;

    /// <summary>Home agent side: the last accepted keepalive counter. Laptop side: the last accepted ack counter.</summary>
    public ulong LastCounter;

    /// <summary>Laptop side: UTC ticks of the last authenticated ack; 0 = none.</summary>
    public long LastAckTicks;
}

/// <summary>One peer, with everything the packet path needs precomputed (host byte order).</summary>
internal sealed class PeerEntry
{
    public required TunnelPeer Peer { get; init; }

    public required uint Network { get; init; }

    public required uint Mask { get; init; }

    public required int PrefixLength { get; init; }

    public required uint Outer { get; init; }

    public required bool Udp { get; init; }

    /// <summary>Udp with a fixed endpoint (OuterAddress:UdpPort), packed; 0 = learned from keepalives.</summary>
    public required long FixedEndpoint { get; init; }

    public required PeerState State { get; init; }

    public bool Contains(uint address) => (address & Mask) == Network;

    /// <summary>Where a Udp peer's packets go now: the fixed endpoint, else the learned one, else 0.</summary>
    public long CurrentEndpoint => FixedEndpoint != 0 ? FixedEndpoint : Volatile.Read(ref State.Endpoint);
}

/// <summary>
/// An immutable snapshot of the peer table: lookups by inner address (exact /32 first, then the
/// longest containing prefix), by keepalive token and by id. Swapped atomically as a whole, so
/// the packet path reads it without a lock.
/// </summary>
internal sealed class PeerTable
{
    public static readonly PeerTable Empty = new([]);

    private readonly FrozenDictionary<uint, PeerEntry> _exact;
    private readonly PeerEntry[] _prefixes; // longest prefix first
    private readonly FrozenDictionary<ulong, PeerEntry> _byToken;
    private readonly FrozenDictionary<string, PeerEntry> _byId;

    private PeerTable(PeerEntry[] entries)
    {
        All = entries;
        _exact = entries.Where(e => e.PrefixLength == 32).ToFrozenDictionary(e => e.Network);
        _prefixes = [.. entries.Where(e => e.PrefixLength != 32).OrderByDescending(e => e.PrefixLength)];
        _byToken = entries.Where(e => e.Peer.Keepalive is not null).ToFrozenDictionary(e => e.Peer.Keepalive!.Token);
        _byId = entries.ToFrozenDictionary(e => e.Peer.Id, StringComparer.Ordinal);
    }

    public IReadOnlyList<PeerEntry> All { get; }

    /// <summary>The peer whose Inner holds <paramref name="address"/> (host order), or null.</summary>
    public PeerEntry? Route(uint address)
    {
        if (_exact.TryGetValue(address, out PeerEntry? e))
        {
            return e;
        }

        foreach (PeerEntry p in _prefixes)
        {
            if (p.Contains(address))
            {
                return p;
            }
        }

        return null;
    }

    public PeerEntry? ByToken(ulong token) => _byToken.GetValueOrDefault(token);

    public PeerEntry? ById(string id) => _byId.GetValueOrDefault(id);

    /// <summary>An endpoint as one 64-bit value: address (host order) in bits 16..47, port in bits 0..15; never 0 for a real endpoint.</summary>
    public static long Pack(uint address, ushort port) => ((long)address << 16) | port;

    public static IPEndPoint Unpack(long packed)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, (uint)(packed >> 16));
        return new IPEndPoint(new IPAddress(b), (ushort)packed);
    }

    public static uint ToHost(IPAddress address)
    {
        Span<byte> b = stackalloc byte[4];
        return address.TryWriteBytes(b, out int n) && n == 4 ? BinaryPrimitives.ReadUInt32BigEndian(b) : throw new ArgumentException($"{address} is not an IPv4 address");
    }

    /// <summary>
    /// Validates <paramref name="peers"/> and builds the next snapshot; a peer whose Id and
    /// keepalive token are unchanged from <paramref name="previous"/> keeps its state.
    /// </summary>
    public static PeerTable Build(IEnumerable<TunnelPeer> peers, PeerTable previous, UserspaceTunnelOptions options)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var entries = new List<PeerEntry>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var tokens = new HashSet<ulong>();
        foreach (TunnelPeer p in peers)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(peers));
            if (string.IsNullOrEmpty(p.Id) || !ids.Add(p.Id))
            {
                throw new ArgumentException($"peer Id '{p.Id}' is empty or not unique", nameof(peers));
            }

            if (p.Inner.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new ArgumentException($"peer {p.Id}: Inner {p.Inner} is not IPv4", nameof(peers));
            }

            if (p.OuterAddress.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new ArgumentException($"peer {p.Id}: OuterAddress {p.OuterAddress} is not IPv4", nameof(peers));
            }

            bool udp = p.Encapsulation == OuterEncapsulation.Udp;
            if (udp ? !options.EnableUdp : !options.EnableIpip)
            {
                throw new ArgumentException($"peer {p.Id}: {p.Encapsulation} encapsulation, but the tunnel was started without {(udp ? "EnableUdp" : "EnableIpip")}", nameof(peers));
            }

            if (p.Keepalive is { } k)
            {
                if (k.Key is null || k.Key.Length != 32)
                {
                    throw new ArgumentException($"peer {p.Id}: Keepalive.Key must be 32 bytes", nameof(peers));
                }

                if (!tokens.Add(k.Token))
                {
                    throw new ArgumentException($"peer {p.Id}: Keepalive.Token {k.Token} is used by another peer", nameof(peers));
                }
            }

            int len = p.Inner.PrefixLength;
            uint mask = len == 0 ? 0 : uint.MaxValue << (32 - len);
            uint outer = ToHost(p.OuterAddress);
            PeerEntry? old = previous.ById(p.Id);
            bool keep = old is not null && old.Peer.Keepalive?.Token == p.Keepalive?.Token;
            entries.Add(new PeerEntry
            {
                Peer = p,
                Network = ToHost(p.Inner.BaseAddress) & mask,
                Mask = mask,
                PrefixLength = len,
                Outer = outer,
                Udp = udp,
                FixedEndpoint = udp && p.UdpPort != 0 ? Pack(outer, p.UdpPort) : 0,
                State = keep ? old!.State : new PeerState(),
            });
        }

        for (int i = 0; i < entries.Count; i++)
        {
            for (int j = i + 1; j < entries.Count; j++)
            {
                PeerEntry a = entries[i], b = entries[j];
                uint common = a.Mask & b.Mask;
                if ((a.Network & common) == (b.Network & common))
                {
                    throw new ArgumentException($"peers {a.Peer.Id} ({a.Peer.Inner}) and {b.Peer.Id} ({b.Peer.Inner}) have overlapping Inner networks", nameof(peers));
                }
            }
        }

        return new PeerTable([.. entries]);
    }
}
