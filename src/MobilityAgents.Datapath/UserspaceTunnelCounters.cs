namespace MobilityAgents.Datapath;

/// <summary>Why the datapath dropped a packet.</summary>
public enum DropReason
{
    /// <summary>Send path: no peer's Inner contains the inner destination.</summary>
    NoPeer,

    /// <summary>Receive path: the outer source (or UDP endpoint) does not own the inner source, or is no peer at all.</summary>
    SpoofedSource,

    /// <summary>Send path: a UDP peer whose endpoint has not been learned from an authenticated keepalive yet.</summary>
    NoEndpointYet,

    /// <summary>Receive path: a control message with an unknown token, a bad HMAC, a bad layout, or from the wrong endpoint.</summary>
    BadKeepalive,

    /// <summary>Receive path: an authenticated keepalive (or ack) whose counter is not above the last accepted one.</summary>
    ReplayedKeepalive,

    /// <summary>Either path: not an IPv4 packet, truncated, or a length that does not add up.</summary>
    Malformed,

    /// <summary>Either path: the kernel refused the send (sendmmsg) or the TUN write.</summary>
    SendError,
}

/// <summary>A snapshot of a tunnel's counters (packets and bytes are inner packets).</summary>
public sealed record UserspaceTunnelCounters
{
    /// <summary>Inner packets read from the TUN and sent to a peer.</summary>
    public long TxPackets { get; init; }

    /// <summary>Inner bytes read from the TUN and sent to a peer.</summary>
    public long TxBytes { get; init; }

    /// <summary>Inner packets decapsulated and written to the TUN.</summary>
    public long RxPackets { get; init; }

    /// <summary>Inner bytes decapsulated and written to the TUN.</summary>
    public long RxBytes { get; init; }

    /// <summary>Keepalives sent (laptop side).</summary>
    public long KeepalivesSent { get; init; }

    /// <summary>Authenticated keepalives accepted (home agent side).</summary>
    public long KeepalivesAccepted { get; init; }

    /// <summary>Authenticated acks accepted (laptop side).</summary>
    public long AcksAccepted { get; init; }

    /// <summary>Drops, indexed by <see cref="DropReason"/>.</summary>
    public IReadOnlyList<long> Drops { get; init; } = new long[DropCount];

    /// <summary>Drops for one reason.</summary>
    public long Dropped(DropReason reason) => Drops[(int)reason];

    /// <summary>Drops: no peer for the inner destination.</summary>
    public long NoPeer => Dropped(DropReason.NoPeer);

    /// <summary>Drops: the sender does not own the inner source.</summary>
    public long SpoofedSource => Dropped(DropReason.SpoofedSource);

    /// <summary>Drops: UDP peer without a learned endpoint.</summary>
    public long NoEndpointYet => Dropped(DropReason.NoEndpointYet);

    /// <summary>Drops: unauthenticated control messages.</summary>
    public long BadKeepalive => Dropped(DropReason.BadKeepalive);

    /// <summary>Drops: replayed control messages.</summary>
    public long ReplayedKeepalive => Dropped(DropReason.ReplayedKeepalive);

    /// <summary>Drops: malformed packets.</summary>
    public long Malformed => Dropped(DropReason.Malformed);

    /// <summary>Drops: refused sends or TUN writes.</summary>
    public long SendError => Dropped(DropReason.SendError);

    internal const int DropCount = (int)DropReason.SendError + 1;

    /// <inheritdoc/>
    public override string ToString() =>
        $"tx {TxPackets} pkts/{TxBytes} B, rx {RxPackets} pkts/{RxBytes} B, keepalives sent {KeepalivesSent} accepted {KeepalivesAccepted} acks {AcksAccepted}, drops: " +
        string.Join(", ", Enum.GetValues<DropReason>().Select(r => $"{r} {Dropped(r)}"));
}

/// <summary>
/// Counters written by exactly one thread (plain increments, no interlocked operations or shared
/// cache lines on the packet path) and read by <see cref="UserspaceTunnel.Counters"/> with volatile reads
/// (64-bit loads do not tear on the 64-bit platforms this runs on).
/// </summary>
internal sealed class CounterBlock
{
    public long Packets;
    public long Bytes;
    public long KeepalivesAccepted;
    public long AcksAccepted;
    public readonly long[] Drops = new long[UserspaceTunnelCounters.DropCount];

    public void Drop(DropReason reason) => Drops[(int)reason]++;
}
