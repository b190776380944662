using System.Runtime.Versioning;
using MobilityAgents.Netlink;

namespace MobilityAgents.Rtnetlink;

/// <summary>
/// An rtnetlink handle bound to one network namespace: links, addresses, routes, rules and
/// neighbours, each operation named and documented after its <c>ip</c> equivalent. The handle owns
/// one NETLINK_ROUTE socket; its operations are serialised. Open one per concurrent user.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class RouteNetlink : IDisposable
{
    /// <summary>Room for one request; the largest we build (a veth pair with names, an ipip link) is far below this.</summary>
    internal const int RequestBufferSize = 1024;

    /// <summary>How many times a dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried.</summary>
    internal const int DumpRetries = 5;

    private RouteNetlink(NetlinkSocket socket, NetworkNamespace netns)
    {
        Socket = socket;
        Namespace = netns;
        Links = new LinkService(this);
        Addresses = new AddressService(this);
        Routes = new RouteService(this);
        Rules = new RuleService(this);
        Neighbours = new NeighbourService(this);
    }

    /// <summary>Opens a handle in <paramref name="netns"/> (default: the caller's namespace).</summary>
    public static RouteNetlink Open(NetworkNamespace? netns = null)
    {
        netns ??= NetworkNamespace.Current;
        return new RouteNetlink(NetlinkSocket.Open(NetlinkConstants.NETLINK_ROUTE, netns), netns);
    }

    /// <summary>The underlying socket.</summary>
    public NetlinkSocket Socket { get; }

    /// <summary>The namespace this handle programs.</summary>
    public NetworkNamespace Namespace { get; }

    public LinkService Links { get; }

    public AddressService Addresses { get; }

    public RouteService Routes { get; }

    public RuleService Rules { get; }

    public NeighbourService Neighbours { get; }

    /// <summary>Runs a dump, retrying when the kernel flags it as interrupted (NLM_F_DUMP_INTR).</summary>
    internal List<T> Dump<T>(RequestBuilder build, Func<NetlinkMessage, T?> parse, Func<string> describe)
        where T : class
    {
        Span<byte> buf = stackalloc byte[RequestBufferSize];
        for (int attempt = 1; ; attempt++)
        {
            var w = new NetlinkWriter(buf);
            build(ref w);
            try
            {
                List<NetlinkMessage> replies = Socket.Execute(buf[..w.Length], describe);
                var list = new List<T>(replies.Count);
                foreach (NetlinkMessage m in replies)
                {
                    if (parse(m) is { } item)
                    {
                        list.Add(item);
                    }
                }

                return list;
            }
            catch (NetlinkDumpInterruptedException) when (attempt < DumpRetries)
            {
            }
        }
    }

    /// <summary>Sends one request and waits for its ack; returns the replies (for GET by key).</summary>
    internal List<NetlinkMessage> Execute(RequestBuilder build, Func<string> describe)
    {
        Span<byte> buf = stackalloc byte[RequestBufferSize];
        var w = new NetlinkWriter(buf);
        build(ref w);
        return Socket.Execute(buf[..w.Length], describe);
    }

    /// <summary>Sends one request; a "not found" answer counts as done (for deletes). Returns false when there was nothing to delete.</summary>
    internal bool ExecuteDelete(RequestBuilder build, Func<string> describe)
    {
        try
        {
            Execute(build, describe);
            return true;
        }
        catch (NetlinkException e) when (e.IsNotFound || e.Errno == Errno.ENODEV || e.Errno == Errno.EADDRNOTAVAIL)
        {
            return false;
        }
    }

    public void Dispose() => Socket.Dispose();
}

/// <summary>Writes one request into a writer.</summary>
internal delegate void RequestBuilder(ref NetlinkWriter writer);
