using System.Threading.Channels;
using MobilityAgents.Protocol.V1;

namespace MobilityAgents.HomeAgent.Services;

/// <summary>
/// One open Heartbeat stream: the replies waiting to be written (a bounded outbox with one
/// writer loop, so refreshes and notices from other threads never interleave on the wire) and
/// the binding it keeps alive (the last one a heartbeat refreshed).
/// </summary>
internal sealed class HeartbeatSession(string identity)
{
    /// <summary>Replies queued beyond this make the request reader wait (a client that does not read stalls only itself).</summary>
    private const int OutboxCapacity = 16;

    private readonly Channel<HeartbeatReply> _outbox = Channel.CreateBounded<HeartbeatReply>(
        new BoundedChannelOptions(OutboxCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private string? _bindingId;
    private HeartbeatReply? _final;

    public string Identity { get; } = identity;

    /// <summary>The binding this stream keeps alive, if a heartbeat has refreshed one.</summary>
    public string? BindingId
    {
        get => Volatile.Read(ref _bindingId);
        set => Volatile.Write(ref _bindingId, value);
    }

    public ChannelReader<HeartbeatReply> Outbox => _outbox.Reader;

    /// <summary>Queues a reply to a heartbeat, waiting for room.</summary>
    public ValueTask ReplyAsync(HeartbeatReply reply, CancellationToken cancellationToken) =>
        _outbox.Writer.WriteAsync(reply, cancellationToken);

    /// <summary>Queues a notice without waiting; false if the stream is closed or its outbox full.</summary>
    public bool TryNotify(HeartbeatReply notice) => _outbox.Writer.TryWrite(notice);

    /// <summary>
    /// The notice written after the outbox is drained, before the stream ends (set by
    /// <see cref="NotifyAndClose"/>; kept apart from the outbox so a full outbox cannot drop it).
    /// </summary>
    public HeartbeatReply? Final => Volatile.Read(ref _final);

    /// <summary>Sets the last notice and closes the outbox: the stream ends once it is written. False if already closed.</summary>
    public bool NotifyAndClose(HeartbeatReply notice)
    {
        if (Interlocked.CompareExchange(ref _final, notice, null) is not null)
        {
            return false;
        }

        return _outbox.Writer.TryComplete();
    }

    /// <summary>Closes the outbox: the stream ends once the queued replies are written.</summary>
    public void Close() => _outbox.Writer.TryComplete();
}
