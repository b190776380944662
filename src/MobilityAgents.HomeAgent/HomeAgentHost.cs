using System.Security.Authentication;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Console;
using MobilityAgents.Core;
using MobilityAgents.HomeAgent.Configuration;
using MobilityAgents.HomeAgent.Security;
using MobilityAgents.HomeAgent.Services;

namespace MobilityAgents.HomeAgent;

/// <summary>Adds the kernel datapath's services (a hosted service reading the BindingTable) for the configured <see cref="DatapathKind"/>.</summary>
public delegate void DatapathRegistration(IServiceCollection services, HomeAgentOptions options);

/// <summary>
/// Builds and runs the home agent: the one code path used by Program and by the tests. The
/// services it registers: <see cref="HomeAgentOptions"/>, <see cref="TimeProvider"/> (System
/// unless a caller registers another), <see cref="AuthorizationPolicy"/>, the
/// <see cref="BindingTable"/> singleton, the gRPC service and its <see cref="BindingMonitor"/>.
/// The kernel datapath is not here: it is a hosted service that subscribes to the BindingTable,
/// added through <see cref="DatapathRegistration"/> (see Program.cs).
/// </summary>
public static class HomeAgentHost
{
    /// <summary>Exit status for a configuration error (sysexits EX_CONFIG).</summary>
    public const int ExitConfigurationError = 78;

    /// <summary>Exit status when the daemon cannot start (e.g. the port is taken).</summary>
    public const int ExitCannotStart = 1;

    /// <summary>Requests are a few addresses and ids: anything larger is not ours.</summary>
    public const int MaxRequestBytes = 16 * 1024;

    /// <summary>The daemon: usage, configuration, start, run until SIGTERM. Returns the exit status.</summary>
    public static async Task<int> MainAsync(string[] args, DatapathRegistration? datapath)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (HomeAgentConfiguration.WantsHelp(args))
        {
            await Console.Out.WriteAsync(HomeAgentConfiguration.Usage());
            return 0;
        }

        HomeAgentOptions options;
        TlsMaterial tls;
        try
        {
            options = HomeAgentConfiguration.Load(args);
            tls = TlsMaterial.Load(options, TimeProvider.System);
        }
        catch (HomeAgentConfigurationException e)
        {
            await Console.Error.WriteLineAsync("home-agent: invalid configuration (see --help):");
            foreach (string line in e.Errors)
            {
                await Console.Error.WriteLineAsync($"  {line}");
            }

            return ExitConfigurationError;
        }

        using (tls)
        {
            await using WebApplication app = Build(options, tls, datapath);
            return await RunAsync(app);
        }
    }

    /// <summary>
    /// The configured application, not started. <paramref name="configureServices"/> runs last
    /// (tests register a FakeTimeProvider or clear the log providers there).
    /// </summary>
    public static WebApplication Build(HomeAgentOptions options, TlsMaterial tls, DatapathRegistration? datapath, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tls);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(HomeAgentHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });

        ConfigureLogging(builder.Logging, options.LogLevel);
        IServiceCollection services = builder.Services;
        services.AddSystemd(); // sd_notify READY/STOPPING and journal-formatted logs when run by systemd
        services.Configure<HostOptions>(h => h.ShutdownTimeout = HomeAgentTimers.ShutdownTimeout);

        services.AddSingleton(options);
        services.AddSingleton(tls);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(_ => options.CreateAuthorizationPolicy());
        services.AddSingleton(sp => new BindingTable(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<AuthorizationPolicy>(), options.BindingTable));
        services.AddSingleton<ClientCertificateValidator>();
        services.AddSingleton<Datapath.KeepaliveKeys>();
        services.AddSingleton<BindingMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<BindingMonitor>());
        services.AddGrpc(g =>
        {
            g.MaxReceiveMessageSize = MaxRequestBytes;
            g.EnableDetailedErrors = false;
        });

        datapath?.Invoke(services, options);
        configureServices?.Invoke(services);

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.Http2.KeepAlivePingDelay = HomeAgentTimers.KeepAlivePingDelay;
            k.Limits.Http2.KeepAlivePingTimeout = HomeAgentTimers.KeepAlivePingTimeout;
            ClientCertificateValidator validator = k.ApplicationServices.GetRequiredService<ClientCertificateValidator>();
            k.Listen(options.Listen, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = tls.ServerCertificate,
                    ServerCertificateChain = tls.ServerChain,
                    SslProtocols = SslProtocols.Tls13,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    ClientCertificateValidation = validator.Validate,
                    CheckCertificateRevocation = false, // the validator's own chain decides, per ClientCertificateRevocation
                });
            });
        });

        WebApplication app = builder.Build();
        app.MapGrpcService<HomeAgentService>();

        ILogger log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(HomeAgentHost).FullName!);
        Log.Started(log, options.HomePrefix.ToString(), options.OuterAddress.ToString(), options.TunnelMtu,
            HomeAgentConfiguration.DatapathName(options.Datapath),
            options.Authorizations.Count, options.Operators.Count);
        if (datapath is null)
        {
            Log.NoDatapath(log);
        }

        foreach (string key in tls.KeyFilesReadableByOthers)
        {
            Log.PrivateKeyReadableByOthers(log, key);
        }

        DateTime notAfter = tls.ServerCertificate.NotAfter.ToUniversalTime();
        if (notAfter - app.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime < TimeSpan.FromDays(14))
        {
            Log.ServerCertificateExpiresSoon(log, tls.ServerCertificate.Subject, notAfter);
        }

        return app;
    }

    /// <summary>Starts <paramref name="app"/>, logs where it listens, and runs until stopped (SIGTERM, Ctrl-C).</summary>
    public static async Task<int> RunAsync(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        try
        {
            await app.StartAsync();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"home-agent: cannot start: {e.Message}");
            return ExitCannotStart;
        }

        LogListening(app);
        await app.WaitForShutdownAsync();
        return 0;
    }

    /// <summary>The addresses the server is bound to (with the real port when Listen asked for port 0).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return [.. app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []];
    }

    /// <summary>Logs event 1000 for each bound address (tests and scripts read the port from it).</summary>
    public static void LogListening(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        ILogger log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(HomeAgentHost).FullName!);
        foreach (string a in Addresses(app))
        {
            Log.Listening(log, a);
        }
    }

    private static void ConfigureLogging(ILoggingBuilder logging, LogLevel level)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(level);
        if (level > LogLevel.Debug)
        {
            // Per-request lines (every heartbeat) only when debugging.
            logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            logging.AddFilter("Grpc", LogLevel.Warning);
        }

        logging.AddSimpleConsole(c =>
        {
            c.SingleLine = true;
            c.UseUtcTimestamp = true;
            c.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            c.ColorBehavior = Console.IsOutputRedirected ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
        });
    }
}
