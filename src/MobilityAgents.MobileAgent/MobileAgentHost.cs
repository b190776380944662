using System.Runtime.Versioning;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Console;
using MobilityAgents.MobileAgent.Agent;
using MobilityAgents.MobileAgent.Configuration;
using MobilityAgents.Netlink;

namespace MobilityAgents.MobileAgent;

/// <summary>
/// Builds and runs the mobile agent on the Generic Host: the one code path used by Program and by
/// the tests. The services it registers: <see cref="MobileAgentOptions"/>, <see cref="ClientTls"/>,
/// the <see cref="NetworkNamespace"/> it runs in, <see cref="TimeProvider"/> and
/// <see cref="AgentTimers"/> (System and Default unless a caller registers others), the
/// <see cref="IKernelWriter"/> (<see cref="ReconcilerKernelWriter"/> unless a caller registers
/// another), and the <see cref="Agent.MobileAgent"/> hosted service.
/// </summary>
[SupportedOSPlatform("linux")]
public static class MobileAgentHost
{
    /// <summary>Exit status after a clean stop (SIGTERM: deregistered, kernel state removed).</summary>
    public const int ExitClean = 0;

    /// <summary>Exit status when the daemon cannot start or fails (netlink unavailable, a bug).</summary>
    public const int ExitCannotStart = 1;

    /// <summary>
    /// Exit status when another device of the same identity took over the home address
    /// (NOTICE_BINDING_REPLACED): the tunnel is removed and the agent does not register again, or
    /// the two devices would take the address from each other forever. A service manager must not
    /// restart it (systemd: RestartPreventExitStatus=3).
    /// </summary>
    public const int ExitBindingReplaced = 3;

    /// <summary>Exit status when the home agent refuses the registration for good (not authorized; sysexits EX_NOPERM).</summary>
    public const int ExitRefused = 77;

    /// <summary>Exit status for a configuration error (sysexits EX_CONFIG).</summary>
    public const int ExitConfigurationError = 78;

    /// <summary>How long a stop may take: Deregister (2 s at most) and the kernel teardown.</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The daemon: usage, configuration, start, run until SIGTERM or a final notice. Returns the exit status.</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (MobileAgentConfiguration.WantsHelp(args))
        {
            await Console.Out.WriteAsync(MobileAgentConfiguration.Usage());
            return ExitClean;
        }

        MobileAgentOptions options;
        ClientTls tls;
        try
        {
            options = MobileAgentConfiguration.Load(args);
            tls = ClientTls.Load(options, TimeProvider.System);
        }
        catch (MobileAgentConfigurationException e)
        {
            await Console.Error.WriteLineAsync("mobile-agent: invalid configuration (see --help):");
            foreach (string line in e.Errors)
            {
                await Console.Error.WriteLineAsync($"  {line}");
            }

            return ExitConfigurationError;
        }

        using (tls)
        {
            NetworkNamespace netns;
            try
            {
                netns = OpenNamespace(options);
            }
            catch (NetlinkSocketException e)
            {
                await Console.Error.WriteLineAsync($"mobile-agent: invalid configuration (see --help):{Environment.NewLine}  Namespace: cannot open '{options.Namespace}': {e.Message}");
                return ExitConfigurationError;
            }

            using (netns)
            {
                IHost host;
                try
                {
                    host = Build(options, tls, netns);
                }
                catch (Exception e) when (e is NetlinkSocketException or NetlinkException)
                {
                    await Console.Error.WriteLineAsync($"mobile-agent: cannot start: {e.Message}");
                    return ExitCannotStart;
                }

                Agent.MobileAgent agent;
                try
                {
                    agent = host.Services.GetRequiredService<Agent.MobileAgent>();
                    await host.RunAsync(); // disposes the host when it ends
                }
                catch (Exception e) when (e is NetlinkSocketException or NetlinkException)
                {
                    // The kernel writer's netlink handle could not be opened (no CAP_NET_ADMIN, say).
                    await Console.Error.WriteLineAsync($"mobile-agent: cannot start: {e.Message}");
                    return ExitCannotStart;
                }

                return agent.ExitCode;
            }
        }
    }

    /// <summary>The configured namespace, or the process's own.</summary>
    public static NetworkNamespace OpenNamespace(MobileAgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Namespace is { } name ? NetworkNamespace.OpenByName(name) : NetworkNamespace.Current;
    }

    /// <summary>
    /// The configured host, not started. <paramref name="configureServices"/> runs first, so what it
    /// registers (a recording <see cref="IKernelWriter"/>, a fake clock, shorter
    /// <see cref="AgentTimers"/>, log providers) takes the place of the defaults.
    /// </summary>
    public static IHost Build(MobileAgentOptions options, ClientTls tls, NetworkNamespace netns, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tls);
        ArgumentNullException.ThrowIfNull(netns);
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = typeof(MobileAgentHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });

        IServiceCollection services = builder.Services;
        ConfigureLogging(builder.Logging, options.LogLevel);
        configureServices?.Invoke(services);

        services.AddSystemd(); // sd_notify READY/STOPPING and journal-formatted logs when run by systemd
        services.Configure<HostOptions>(h => h.ShutdownTimeout = ShutdownTimeout);
        services.Configure<ConsoleLifetimeOptions>(c => c.SuppressStatusMessages = true);
        services.AddSingleton(options);
        services.AddSingleton(tls);
        services.AddSingleton(netns);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(AgentTimers.Default);
        if (!services.Any(d => d.ServiceType == typeof(IKernelWriter)))
        {
            // The kernel writer is also a hosted service (it puts back what others delete); it
            // starts before the agent and stops after it.
            services.AddSingleton<ReconcilerKernelWriter>();
            services.AddSingleton<IKernelWriter>(sp => sp.GetRequiredService<ReconcilerKernelWriter>());
            services.AddHostedService(sp => sp.GetRequiredService<ReconcilerKernelWriter>());
        }

        services.AddSingleton<Agent.MobileAgent>();
        services.AddHostedService(sp => sp.GetRequiredService<Agent.MobileAgent>());

        IHost host = builder.Build();
        ILogger log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(MobileAgentHost).FullName!);
        if (tls.KeyReadableByOthers)
        {
            Log.PrivateKeyReadableByOthers(log, options.PrivateKey);
        }

        DateTime notAfter = tls.ClientCertificate.NotAfter.ToUniversalTime();
        if (notAfter - host.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime < TimeSpan.FromDays(14))
        {
            Log.ClientCertificateExpiresSoon(log, tls.ClientCertificate.Subject, notAfter);
        }

        return host;
    }

    private static void ConfigureLogging(ILoggingBuilder logging, LogLevel level)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(level);
        if (level > LogLevel.Debug)
        {
            logging.AddFilter("Microsoft", LogLevel.Warning);
            logging.AddFilter("System.Net.Http", LogLevel.Warning);
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
