using System.Runtime.Versioning;
using System.Threading.Channels;
using MobilityAgents.Netlink;
using static MobilityAgents.Rtnetlink.RtnetlinkConstants;

namespace MobilityAgents.Rtnetlink;

/// <summary>What a <see cref="RouteMonitor"/> reports.</summary>
public abstract record RouteEvent
{
    /// <summary>True for RTM_DEL*.</summary>
    public bool Deleted { get; init; }
}

public sealed record LinkEvent(Link Link) : RouteEvent;

public sealed record AddressEvent(AddressEntry Address) : RouteEvent;

public sealed record RouteChangeEvent(RouteEntry Route) : RouteEvent;

public sealed record RuleEvent(RuleEntry Rule) : RouteEvent;

public sealed record NeighbourEvent(NeighbourEntry Neighbour) : RouteEvent;

/// <summary>
/// The kernel dropped events for this listener (ENOBUFS: its receive buffer overflowed). Whatever
/// state the consumer tracks must be re-read with a dump; the stream continues after this.
/// </summary>
public sealed record ResyncRequired : RouteEvent;

/// <summary>Which rtnetlink multicast groups to listen to.</summary>
[Flags]
public enum RouteMonitorGroups
{
    None = 0,
    Links = 1,
    Addresses = 2,
    Routes = 4,
    Rules = 8,
    Neighbours = 16,
    All = Links | Addresses | Routes | Rules | Neighbours,
}

/// <summary>
/// Listens to rtnetlink multicast events in one namespace (IPv4 addresses, routes and rules; links;
/// neighbours). Equivalent to: <c>ip monitor link address route rule</c>. Events arrive on
/// <see cref="Events"/> in kernel order; a malformed message is skipped, never fatal.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class RouteMonitor : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);
    private readonly NetlinkSocket _socket;
    private readonly Channel<RouteEvent> _events = Channel.CreateUnbounded<RouteEvent>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _reader;

    private RouteMonitor(NetlinkSocket socket)
    {
        _socket = socket;
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "rtnetlink monitor" };
        _reader.Start();
    }

    /// <summary>Subscribes before returning: every change made after this call is reported.</summary>
    public static RouteMonitor Start(RouteMonitorGroups groups, NetworkNamespace? netns = null)
    {
        var g = new List<uint>();
        if (groups.HasFlag(RouteMonitorGroups.Links))
        {
            g.Add(RTNLGRP_LINK);
        }

        if (groups.HasFlag(RouteMonitorGroups.Addresses))
        {
            g.Add(RTNLGRP_IPV4_IFADDR);
        }

        if (groups.HasFlag(RouteMonitorGroups.Routes))
        {
            g.Add(RTNLGRP_IPV4_ROUTE);
        }

        if (groups.HasFlag(RouteMonitorGroups.Rules))
        {
            g.Add(RTNLGRP_IPV4_RULE);
        }

        if (groups.HasFlag(RouteMonitorGroups.Neighbours))
        {
            g.Add(RTNLGRP_NEIGH);
        }

        var socket = NetlinkSocket.Open(NetlinkConstants.NETLINK_ROUTE, netns, new NetlinkSocketOptions { Groups = g, ReceiveTimeout = Poll });
        return new RouteMonitor(socket);
    }

    /// <summary>The events, until the monitor is disposed (then the channel completes).</summary>
    public ChannelReader<RouteEvent> Events => _events.Reader;

    /// <summary>Messages that could not be decoded and were skipped.</summary>
    public long Malformed => Interlocked.Read(ref _malformed);

    private long _malformed;

    private void ReadLoop()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                List<NetlinkMessage>? batch;
                try
                {
                    batch = _socket.ReceiveEvents();
                }
                catch (NetlinkParseException)
                {
                    Interlocked.Increment(ref _malformed);
                    continue;
                }

                if (batch is null)
                {
                    _events.Writer.TryWrite(new ResyncRequired());
                    continue;
                }

                foreach (NetlinkMessage m in batch)
                {
                    RouteEvent? e;
                    try
                    {
                        e = Decode(m);
                    }
                    catch (NetlinkParseException)
                    {
                        Interlocked.Increment(ref _malformed);
                        continue;
                    }

                    if (e is not null)
                    {
                        _events.Writer.TryWrite(e);
                    }
                }
            }

            _events.Writer.TryComplete();
        }
        catch (Exception e) when (e is NetlinkSocketException or ObjectDisposedException)
        {
            _events.Writer.TryComplete(_stop.IsCancellationRequested ? null : e);
        }
    }

    /// <summary>Decodes one rtnetlink event message; null for message types it does not report.</summary>
    public static RouteEvent? Decode(NetlinkMessage m) => m.Type switch
    {
        RTM_NEWLINK or RTM_DELLINK => new LinkEvent(Link.Decode(m)) { Deleted = m.Type == RTM_DELLINK },
        RTM_NEWADDR or RTM_DELADDR => new AddressEvent(AddressEntry.Decode(m)) { Deleted = m.Type == RTM_DELADDR },
        RTM_NEWROUTE or RTM_DELROUTE => new RouteChangeEvent(RouteEntry.Decode(m)) { Deleted = m.Type == RTM_DELROUTE },
        RTM_NEWRULE or RTM_DELRULE => new RuleEvent(RuleEntry.Decode(m)) { Deleted = m.Type == RTM_DELRULE },
        RTM_NEWNEIGH or RTM_DELNEIGH => new NeighbourEvent(NeighbourEntry.Decode(m)) { Deleted = m.Type == RTM_DELNEIGH },
        _ => null,
    };

    public void Dispose()
    {
        if (!_stop.IsCancellationRequested)
        {
            _stop.Cancel();
            _reader.Join();
            _socket.Dispose();
            _stop.Dispose();
        }
    }
}
