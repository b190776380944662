using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Grpc.Net.Client;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Netlink;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.MobileAgent.Agent;

/// <summary>
/// One gRPC channel to the home agent whose every TCP connection leaves from
/// <see cref="LocalAddress"/> (the care-of address it was made for): the socket is created in the
/// agent's network namespace, bound to care-of:0, then connected. So the home agent sees the
/// registration come from the new address after a move. A move abandons the whole channel
/// (<see cref="Dispose"/>): its connection is closed at once, not left to time out.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class HomeAgentConnection : IDisposable
{
    private readonly GrpcChannel _channel;

    private HomeAgentConnection(GrpcChannel channel, IPAddress localAddress)
    {
        _channel = channel;
        LocalAddress = localAddress;
        Client = new Client(channel);
    }

    /// <summary>The care-of address the connection is bound to.</summary>
    public IPAddress LocalAddress { get; }

    public Client Client { get; }

    /// <summary>
    /// A channel to <paramref name="endpoint"/> from <paramref name="localAddress"/>, sockets made in
    /// <paramref name="netns"/>, mutual TLS 1.3 from <paramref name="tls"/>.
    /// <paramref name="onCertificateRejected"/> hears why a home agent certificate was refused.
    /// </summary>
    public static HomeAgentConnection Open(Uri endpoint, IPAddress localAddress, NetworkNamespace netns, ClientTls tls, AgentTimers timers, Action<string>? onCertificateRejected = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(localAddress);
        ArgumentNullException.ThrowIfNull(netns);
        ArgumentNullException.ThrowIfNull(tls);
        ArgumentNullException.ThrowIfNull(timers);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = timers.ConnectTimeout,
            SslOptions = tls.ClientOptions(endpoint.IdnHost, onCertificateRejected),
            // A silent home agent (gone without a FIN) is noticed by HTTP/2 pings while a call is open.
            KeepAlivePingDelay = timers.KeepAlivePingDelay,
            KeepAlivePingTimeout = timers.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = false,
            UseProxy = false,
            ConnectCallback = (context, cancellationToken) => ConnectAsync(context.DnsEndPoint, localAddress, netns, cancellationToken),
        };

        GrpcChannel channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 64 * 1024,
        });
        return new HomeAgentConnection(channel, localAddress);
    }

    /// <summary>The connect step of the handler: socket in the namespace, bound to the care-of address, connected.</summary>
    private static async ValueTask<Stream> ConnectAsync(DnsEndPoint target, IPAddress localAddress, NetworkNamespace netns, CancellationToken cancellationToken)
    {
        IPAddress[] addresses = IPAddress.TryParse(target.Host, out IPAddress? literal) ? [literal]
            : netns.IsCurrent ? await Dns.GetHostAddressesAsync(target.Host, AddressFamily.InterNetwork, cancellationToken).ConfigureAwait(false)
            // getaddrinfo on the namespace's thread: the resolver's own sockets go out of that namespace too.
            : await Task.Run(() => netns.Run(() => Dns.GetHostAddresses(target.Host, AddressFamily.InterNetwork)), cancellationToken).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        SocketException? last = null;
        foreach (IPAddress remote in addresses)
        {
            Socket socket = netns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            try
            {
                socket.NoDelay = true;
                socket.Bind(new IPEndPoint(localAddress, 0));
                await socket.ConnectAsync(new IPEndPoint(remote, target.Port), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last!;
    }

    public void Dispose() => _channel.Dispose();
}
