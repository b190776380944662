using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using MobilityAgents.HomeAgent.Configuration;
using MobilityAgents.HomeAgent.Security;
using MobilityAgents.Netlink;
using MobilityAgents.Protocol.V1;
using Client = MobilityAgents.Protocol.V1.HomeAgent.HomeAgentClient;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>
/// The home agent in this process, built by <see cref="HomeAgentHost.Build"/> (Program's code
/// path) from configuration keys, listening on 127.0.0.1 with a free port, with a
/// <see cref="FakeTimeProvider"/> (started at the real time, so the test certificates are valid)
/// as its clock. Clients are real gRPC clients over real TLS 1.3.
/// </summary>
public sealed class TestHomeAgent : IAsyncDisposable
{
    public const string Alice1 = "192.0.2.77";
    public const string Alice2 = "192.0.2.78";
    public const string Bob1 = "192.0.2.80";
    public const string CareOfA = "198.51.100.10";
    public const string CareOfB = "203.0.113.20";

    private readonly List<GrpcChannel> _channels = [];
    private readonly TlsMaterial _tls;

    private TestHomeAgent(TestPki pki, WebApplication app, TlsMaterial tls, FakeTimeProvider time, HomeAgentOptions options)
    {
        Pki = pki;
        App = app;
        _tls = tls;
        Time = time;
        Options = options;
        Address = HomeAgentHost.Addresses(app).Single();
    }

    public TestPki Pki { get; }

    public WebApplication App { get; }

    public FakeTimeProvider Time { get; }

    public HomeAgentOptions Options { get; }

    /// <summary>https://127.0.0.1:PORT</summary>
    public string Address { get; }

    /// <summary>The standard test configuration: home 192.0.2.0/24, alice .77 .78, bob .80, operator mailserver.</summary>
    public static Dictionary<string, string?> Keys(TestPki pki) => new()
    {
        ["Listen"] = "127.0.0.1:0",
        ["Certificate"] = pki.ServerPem,
        ["PrivateKey"] = pki.ServerKey,
        ["ClientCa"] = pki.CaPem,
        ["HomePrefix"] = "192.0.2.0/24",
        ["OuterAddress"] = "192.0.2.1",
        ["Authorizations:alice:0"] = Alice1,
        ["Authorizations:alice:1"] = Alice2,
        ["Authorizations:bob:0"] = Bob1,
        ["Operators:0"] = "mailserver",
    };

    public static async Task<TestHomeAgent> StartAsync(TestPki pki, Action<Dictionary<string, string?>>? keys = null)
    {
        Dictionary<string, string?> k = Keys(pki);
        keys?.Invoke(k);
        IConfiguration config = new ConfigurationBuilder().AddInMemoryCollection(k).Build();
        HomeAgentOptions options = HomeAgentConfiguration.Load(config, pki.Directory);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TlsMaterial tls = TlsMaterial.Load(options, time);
        WebApplication app = HomeAgentHost.Build(options, tls, datapath: null, services =>
        {
            services.AddSingleton<TimeProvider>(time);
            services.AddLogging(l => l.ClearProviders()); // set MA_TEST_LOGS=1 to see the daemon's log
            if (Environment.GetEnvironmentVariable("MA_TEST_LOGS") == "1")
            {
                services.AddLogging(l => l.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Debug));
            }
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        return new TestHomeAgent(pki, app, tls, time, options);
    }

    /// <summary>A client presenting <paramref name="certificate"/> (none if null), trusting only the test CA for the server.</summary>
    public Client Client(X509Certificate2? certificate)
    {
        GrpcChannel channel = Channel(Address, Pki.Ca, certificate);
        _channels.Add(channel);
        return new Client(channel);
    }

    public Client Alice => Client(Pki.Alice);

    public Client Bob => Client(Pki.Bob);

    public Client Operator => Client(Pki.Mailserver);

    public static GrpcChannel Channel(string address, X509Certificate2 serverCa, X509Certificate2? clientCertificate) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = Handler(serverCa, clientCertificate), DisposeHttpClient = true });

    /// <summary>
    /// As <see cref="Channel(string, X509Certificate2, X509Certificate2?)"/>, for a server listening
    /// inside <paramref name="netns"/> (a daemon run with <c>ip netns exec</c>): each connection's
    /// socket is created inside that namespace (a socket stays in the namespace it was created in),
    /// so <paramref name="address"/> (e.g. https://127.0.0.1:PORT) is the namespace's loopback.
    /// </summary>
    public static GrpcChannel Channel(string address, X509Certificate2 serverCa, X509Certificate2? clientCertificate, NetworkNamespace netns)
    {
        ArgumentNullException.ThrowIfNull(netns);
        SocketsHttpHandler handler = Handler(serverCa, clientCertificate);
        handler.ConnectCallback = async (context, cancellationToken) =>
        {
            Socket s = netns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            try
            {
                s.NoDelay = true;
                await s.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(s, ownsSocket: true);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        };
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    private static SocketsHttpHandler Handler(X509Certificate2 serverCa, X509Certificate2? clientCertificate)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            SslOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = SslProtocols.Tls13,
                ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
                RemoteCertificateValidationCallback = (_, cert, _, errors) =>
                {
                    if (cert is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                    {
                        return false;
                    }

                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(serverCa);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(new X509Certificate2(cert));
                },
            },
        };
        return handler;
    }

    public static RegisterRequest Request(string careOf = CareOfA, string home = "", string device = "laptop", uint lifetime = 0) =>
        new() { CareOfAddress = careOf, HomeAddress = home, DeviceId = device, RequestedLifetimeSeconds = lifetime };

    /// <summary>Call options: a deadline (nothing here should take more than a few seconds) and the test's cancellation.</summary>
    public static CallOptions Call => new(deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: Ct);

    /// <summary>The test's cancellation token.</summary>
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        foreach (GrpcChannel c in _channels)
        {
            c.Dispose();
        }

        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        _tls.Dispose();
    }
}

/// <summary>Bounded waits on streams.</summary>
public static class StreamExtensions
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>The next message, failing the test if none comes within <see cref="Timeout"/>.</summary>
    public static async Task<T> NextAsync<T>(this IAsyncStreamReader<T> reader)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        Assert.True(await reader.MoveNext(cts.Token), "the stream ended");
        return reader.Current;
    }

    /// <summary>True if the stream ends (cleanly) within <see cref="Timeout"/>.</summary>
    public static async Task<bool> EndsAsync<T>(this IAsyncStreamReader<T> reader)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        return !await reader.MoveNext(cts.Token);
    }
}
