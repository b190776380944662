using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MobilityAgents.HomeAgent.Configuration;

/// <summary>One configuration key: what <c>--help</c> prints and what the loader accepts.</summary>
/// <param name="Name">The key as written in the JSON file, after <c>MA_HOMEAGENT__</c>, or after <c>--</c>.</param>
/// <param name="Default">Its default, or "(required)".</param>
/// <param name="Description">One line a user can act on.</param>
public sealed record ConfigurationKey(string Name, string Default, string Description);

/// <summary>
/// Loads <see cref="HomeAgentOptions"/>: a JSON file (default <see cref="DefaultConfigPath"/>,
/// <c>--config PATH</c>), overridden by environment variables <c>MA_HOMEAGENT__Key</c> (sections
/// with <c>__</c>: <c>MA_HOMEAGENT__Authorizations__alice__0</c>), overridden by the command line
/// (<c>--Key=value</c> or <c>--Key value</c>; sections with <c>:</c>). Every problem is reported
/// at once, each naming its key.
/// </summary>
public static class HomeAgentConfiguration
{
    public const string DefaultConfigPath = "/etc/mobilityagents/home-agent.json";
    public const string EnvironmentPrefix = "MA_HOMEAGENT__";
    public const int DefaultTunnelMtu = 1480; // 1500 - the 20-byte outer IPv4 header of ipip
    public const int DefaultUdpPort = 4433;
    public const int DefaultKeepaliveSeconds = 15;
    private const string Required = "(required)";

    /// <summary>Every key, in the order <c>--help</c> prints them.</summary>
    public static readonly IReadOnlyList<ConfigurationKey> Keys =
    [
        new("Listen", "0.0.0.0:4433", "address:port of the gRPC endpoint (mutual TLS 1.3, HTTP/2); port 0 = any free port, logged at start"),
        new("Certificate", "/etc/mobilityagents/home-agent.pem", "PEM file: the home agent's server certificate, intermediates after it (relative paths: to the config file's folder)"),
        new("PrivateKey", "/etc/mobilityagents/home-agent.key", "PEM file: the server certificate's private key (PKCS#8, PKCS#1 or SEC1)"),
        new("ClientCa", "/etc/mobilityagents/ca.pem", "PEM file: the CA certificate(s) laptop and operator certificates must chain to; no other root is trusted"),
        new("HomePrefix", Required, "the home network, e.g. 192.0.2.0/24: home addresses lie in it, care-of addresses must not"),
        new("OuterAddress", Required, "this gateway's tunnel endpoint address (local end of every ipip tunnel), e.g. 192.0.2.1"),
        new("LanInterface", "\"\"", "the home LAN interface where proxy ARP answers for home addresses, e.g. eth0 (used by the kernel datapath)"),
        new("TunnelMtu", DefaultTunnelMtu.ToString(CultureInfo.InvariantCulture), "tunnel MTU told to laptops (1480 = 1500 - 20-byte ipip header); 68..65515"),
        new("DefaultLifetimeSeconds", SecondsText(Core.ProtocolTimers.DefaultLifetime), "binding lifetime granted when the laptop asks for none"),
        new("MinimumLifetimeSeconds", SecondsText(Core.ProtocolTimers.MinimumLifetime), "shortest lifetime granted (at least 3: heartbeats go 3 times per lifetime)"),
        new("MaximumLifetimeSeconds", SecondsText(Core.ProtocolTimers.MaximumLifetime), "longest lifetime granted (at most 86400): a vanished laptop is forgotten within it"),
        new("Authorizations", "{}", "identity (client certificate subject CN) -> home addresses it may claim: {\"alice\": [\"192.0.2.77\"]}; an address belongs to one identity"),
        new("Operators", "[]", "identities that may read every binding (GetBinding of anyone, ListBindings, WatchBindings); a laptop reads only its own"),
        new("Datapath", "auto", "auto (kernel where the kernel can create ipip links, else userspace; logged at start), kernel (one ipip link per binding, as in the talk; alias kernel-classic), userspace (one TUN device, ipip encapsulated by the agent); kernel-external is reserved and refused at start"),
        new("UdpPort", "4433", "UDP port for laptops behind NAT (ipip-in-UDP and their authenticated keepalives); 1..65535"),
        new("KeepaliveIntervalSeconds", "15", "how often laptops behind NAT send keepalives (keeps the NAT mapping open; within common 30 s UDP timeouts); 1..300"),
        new("ClientCertificateRevocation", "no-check", "no-check, online or offline: revocation checking of client certificates"),
        new("LogLevel", "Information", "Trace, Debug, Information, Warning, Error or Critical"),
    ];

    private static readonly FrozenSet<string> KnownKeys = Keys.Select(k => k.Name).ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>The configuration spelling of a datapath kind.</summary>
    public static string DatapathName(DatapathKind kind) => kind switch
    {
        DatapathKind.Auto => "auto",
        DatapathKind.Userspace => "userspace",
        DatapathKind.KernelClassic => "kernel",
        _ => "kernel-external",
    };

    /// <summary>True if the command line asks for usage.</summary>
    public static bool WantsHelp(IReadOnlyList<string> args) =>
        args.Any(a => a is "--help" or "-h" or "-?" or "help");

    /// <summary>The usage text: the command line and every key with its default.</summary>
    public static string Usage()
    {
        var sb = new StringBuilder();
        sb.AppendLine("usage: MobilityAgents.HomeAgent [--config PATH] [--Key=value ...]");
        sb.AppendLine();
        sb.AppendLine("The home agent of MobilityAgents: laptops register their care-of address over gRPC with");
        sb.AppendLine("mutual TLS 1.3; their identity is the subject CN of their client certificate.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Configuration: the JSON file --config PATH (default {DefaultConfigPath}), then");
        sb.AppendLine(CultureInfo.InvariantCulture, $"environment variables {EnvironmentPrefix}Key (sections: {EnvironmentPrefix}Authorizations__alice__0=192.0.2.77),");
        sb.AppendLine("then the command line (--Key=value; sections: --Authorizations:alice=192.0.2.77,192.0.2.78).");
        sb.AppendLine("Lists (Operators, an identity's addresses) are JSON arrays or comma-separated strings.");
        sb.AppendLine();
        sb.AppendLine("Keys (default):");
        foreach (ConfigurationKey k in Keys)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {k.Name,-28} {k.Default}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {"",-28} {k.Description}");
        }

        sb.AppendLine();
        sb.AppendLine("Exit status: 0 after a clean stop (SIGTERM), 78 for a configuration error, 1 if it cannot start.");
        return sb.ToString();
    }

    /// <summary>Builds the configuration from the command line and loads it. Throws <see cref="HomeAgentConfigurationException"/>.</summary>
    public static HomeAgentOptions Load(string[] args)
    {
        IConfiguration config = Build(args, out string configDirectory, out string? missingDefault);
        try
        {
            return Load(config, configDirectory);
        }
        catch (HomeAgentConfigurationException e) when (missingDefault is not null)
        {
            throw new HomeAgentConfigurationException([.. e.Errors, $"--config: there is no file at {missingDefault} (the default): give --config PATH, or every key in the environment or on the command line"]);
        }
    }

    /// <summary>The layered configuration (file, environment, command line) without validation.</summary>
    public static IConfiguration Build(string[] args, out string configDirectory, out string? missingDefault)
    {
        missingDefault = null;
        ArgumentNullException.ThrowIfNull(args);
        string? path = null;
        var rest = new List<string>();
        var errors = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--config")
            {
                if (i + 1 >= args.Length)
                {
                    errors.Add("--config: a file path must follow");
                }
                else
                {
                    path = args[++i];
                }
            }
            else if (a.StartsWith("--config=", StringComparison.Ordinal))
            {
                path = a["--config=".Length..];
            }
            else if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                rest.Add(a);
                if (!a.Contains('=', StringComparison.Ordinal))
                {
                    if (i + 1 >= args.Length)
                    {
                        errors.Add($"{a[2..]}: a value must follow {a} (or write {a}=value)");
                    }
                    else
                    {
                        rest.Add(args[++i]);
                    }
                }
            }
            else
            {
                errors.Add($"unexpected argument '{a}': keys are given as --Key=value (see --help)");
            }
        }

        bool explicitPath = path is not null;
        path = Path.GetFullPath(path ?? DefaultConfigPath);
        configDirectory = Path.GetDirectoryName(path) ?? "/";
        if (explicitPath && !File.Exists(path))
        {
            errors.Add($"--config: '{path}' does not exist");
        }

        if (errors.Count > 0)
        {
            throw new HomeAgentConfigurationException(errors);
        }

        var builder = new ConfigurationBuilder();
        if (File.Exists(path))
        {
            builder.AddJsonFile(path, optional: false, reloadOnChange: false);
        }
        else
        {
            configDirectory = Directory.GetCurrentDirectory();
            missingDefault = path;
        }

        builder.AddEnvironmentVariables(EnvironmentPrefix);
        builder.AddCommandLine([.. rest]);
        try
        {
            return builder.Build();
        }
        catch (InvalidDataException e)
        {
            throw new HomeAgentConfigurationException($"--config: '{path}' is not valid JSON: {e.InnerException?.Message ?? e.Message}");
        }
    }

    /// <summary>Validates <paramref name="config"/> into options; relative file paths resolve against <paramref name="baseDirectory"/>.</summary>
    public static HomeAgentOptions Load(IConfiguration config, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(config);
        var errors = new List<string>();
        foreach (IConfigurationSection s in config.GetChildren())
        {
            if (!KnownKeys.Contains(s.Key))
            {
                errors.Add($"{s.Key}: unknown key (known: {string.Join(", ", Keys.Select(k => k.Name))})");
            }
        }

        var r = new Reader(config, errors);
        IPEndPoint? listen = r.Scalar<IPEndPoint?>("Listen", IPEndPoint.Parse("0.0.0.0:4433"), v =>
            IPEndPoint.TryParse(v, out IPEndPoint? ep) && v.Contains(':', StringComparison.Ordinal) ? (ep, null) : (null, "is not address:port (e.g. 0.0.0.0:4433)"));
        string certificate = r.Path("Certificate", "/etc/mobilityagents/home-agent.pem", baseDirectory);
        string privateKey = r.Path("PrivateKey", "/etc/mobilityagents/home-agent.key", baseDirectory);
        string clientCa = r.Path("ClientCa", "/etc/mobilityagents/ca.pem", baseDirectory);
        IPNetwork? homePrefix = r.Scalar<IPNetwork?>("HomePrefix", null, v =>
            Ipv4.TryParsePrefix(v, out IPNetwork n, out string problem) ? (n, null) : (null, problem));
        IPAddress? outer = r.Scalar<IPAddress?>("OuterAddress", null, v =>
            !Ipv4.TryParse(v, out IPAddress a) ? (null, "is not an IPv4 address (e.g. 192.0.2.1)")
            : Ipv4.NotUnicast(a) is { } why ? (null, $"is {why}")
            : (a, null));
        string lan = r.Scalar("LanInterface", "", v =>
            v.Length is > 0 and <= 15 && !v.Any(c => char.IsWhiteSpace(c) || c is '/' or ':') && v is not "." and not ".."
                ? (v, null) : (null, "is not an interface name (1..15 characters, no '/', ':' or spaces)")) ?? "";
        int mtu = r.Int("TunnelMtu", DefaultTunnelMtu, 68, 65515);
        int defaultLifetime = r.Int("DefaultLifetimeSeconds", Seconds(Core.ProtocolTimers.DefaultLifetime), 3, 86_400);
        int minLifetime = r.Int("MinimumLifetimeSeconds", Seconds(Core.ProtocolTimers.MinimumLifetime), 3, 86_400);
        int maxLifetime = r.Int("MaximumLifetimeSeconds", Seconds(Core.ProtocolTimers.MaximumLifetime), 3, 86_400);
        if (minLifetime > maxLifetime)
        {
            errors.Add($"MinimumLifetimeSeconds: {minLifetime} is more than MaximumLifetimeSeconds {maxLifetime}");
        }
        else if (defaultLifetime < minLifetime || defaultLifetime > maxLifetime)
        {
            errors.Add($"DefaultLifetimeSeconds: {defaultLifetime} is outside MinimumLifetimeSeconds..MaximumLifetimeSeconds ({minLifetime}..{maxLifetime})");
        }

        DatapathKind datapath = r.Scalar("Datapath", DatapathKind.Auto, v => v.ToUpperInvariant() switch
        {
            "AUTO" => (DatapathKind.Auto, null),
            "KERNEL" or "KERNEL-CLASSIC" => (DatapathKind.KernelClassic, null),
            "USERSPACE" => (DatapathKind.Userspace, null),
            "KERNEL-EXTERNAL" => (DatapathKind.KernelExternal, null),
            _ => (DatapathKind.Auto, "is not auto, kernel, userspace or kernel-external"),
        });
        int udpPort = r.Int("UdpPort", DefaultUdpPort, 1, 65535);
        int keepalive = r.Int("KeepaliveIntervalSeconds", DefaultKeepaliveSeconds, 1, 300);
        X509RevocationMode revocation = r.Scalar("ClientCertificateRevocation", X509RevocationMode.NoCheck, v => v.ToUpperInvariant() switch
        {
            "NO-CHECK" or "NOCHECK" => (X509RevocationMode.NoCheck, null),
            "ONLINE" => (X509RevocationMode.Online, null),
            "OFFLINE" => (X509RevocationMode.Offline, null),
            _ => (X509RevocationMode.NoCheck, "is not no-check, online or offline"),
        });
        LogLevel logLevel = r.Scalar("LogLevel", LogLevel.Information, v =>
            Enum.TryParse(v, ignoreCase: true, out LogLevel l) && Enum.IsDefined(l) && !int.TryParse(v, CultureInfo.InvariantCulture, out _)
                ? (l, null) : (LogLevel.Information, "is not Trace, Debug, Information, Warning, Error or Critical"));

        FrozenSet<string> operators = r.List("Operators").ToFrozenSet(StringComparer.Ordinal);
        foreach (string o in operators.Where(string.IsNullOrWhiteSpace))
        {
            errors.Add("Operators: an entry is empty");
        }

        var authorizations = new Dictionary<string, IReadOnlyList<IPAddress>>(StringComparer.Ordinal);
        var owner = new Dictionary<IPAddress, string>();
        IConfigurationSection auth = config.GetSection("Authorizations");
        if (auth.Value is { Length: > 0 })
        {
            errors.Add("Authorizations: expected identity -> home addresses, e.g. {\"alice\": [\"192.0.2.77\"]}, not a single value");
        }

        foreach (IConfigurationSection identity in auth.GetChildren())
        {
            string key = $"Authorizations:{identity.Key}";
            var addresses = new List<IPAddress>();
            foreach (string v in Reader.ListOf(identity))
            {
                if (!Ipv4.TryParse(v, out IPAddress a))
                {
                    errors.Add($"{key}: '{v}' is not an IPv4 address");
                }
                else if (homePrefix is { } p && !p.Contains(a))
                {
                    errors.Add($"{key}: {a} is not in HomePrefix {p}");
                }
                else if (homePrefix is { PrefixLength: <= 30 } q && (a.Equals(q.BaseAddress) || a.Equals(Ipv4.Broadcast(q))))
                {
                    errors.Add($"{key}: {a} is the network or broadcast address of HomePrefix {q}");
                }
                else if (a.Equals(outer))
                {
                    errors.Add($"{key}: {a} is OuterAddress, the home agent's own address");
                }
                else if (owner.TryGetValue(a, out string? other) && other != identity.Key)
                {
                    errors.Add($"{key}: {a} is also authorized for {other}; an address belongs to one identity");
                }
                else if (!addresses.Contains(a))
                {
                    owner[a] = identity.Key;
                    addresses.Add(a);
                }
            }

            if (addresses.Count == 0 && !errors.Any(e => e.StartsWith(key + ":", StringComparison.Ordinal)))
            {
                errors.Add($"{key}: no home address (give one or more, e.g. [\"192.0.2.77\"])");
            }

            authorizations[identity.Key] = addresses;
        }

        if (errors.Count > 0)
        {
            throw new HomeAgentConfigurationException(errors);
        }

        return new HomeAgentOptions
        {
            Listen = listen!,
            Certificate = certificate,
            PrivateKey = privateKey,
            ClientCa = clientCa,
            HomePrefix = homePrefix!.Value,
            OuterAddress = outer!,
            LanInterface = lan,
            TunnelMtu = mtu,
            DefaultLifetime = TimeSpan.FromSeconds(defaultLifetime),
            MinimumLifetime = TimeSpan.FromSeconds(minLifetime),
            MaximumLifetime = TimeSpan.FromSeconds(maxLifetime),
            Authorizations = authorizations.ToFrozenDictionary(StringComparer.Ordinal),
            Operators = operators,
            Datapath = datapath,
            UdpPort = (ushort)udpPort,
            KeepaliveInterval = TimeSpan.FromSeconds(keepalive),
            ClientCertificateRevocation = revocation,
            LogLevel = logLevel,
        };
    }

    private static string SecondsText(TimeSpan t) => Seconds(t).ToString(CultureInfo.InvariantCulture);

    private static int Seconds(TimeSpan t) => (int)t.TotalSeconds;

    /// <summary>Reads keys, adding one error per bad key.</summary>
    private sealed class Reader(IConfiguration config, List<string> errors)
    {
        public T Scalar<T>(string key, T fallback, Func<string, (T? Value, string? Problem)> parse)
        {
            IConfigurationSection s = config.GetSection(key);
            if (s.GetChildren().Any())
            {
                errors.Add($"{key}: expected a single value, not a section");
                return fallback;
            }

            if (string.IsNullOrWhiteSpace(s.Value))
            {
                if (fallback is null)
                {
                    errors.Add($"{key}: required (see --help)");
                }

                return fallback;
            }

            (T? value, string? problem) = parse(s.Value.Trim());
            if (problem is not null)
            {
                errors.Add($"{key}: '{s.Value}' {problem}");
                return fallback;
            }

            return value!;
        }

        public int Int(string key, int fallback, int min, int max) => Scalar(key, fallback, v =>
            int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
                ? (n, null) : (fallback, $"is not a whole number in {min}..{max}"));

        public string Path(string key, string fallback, string baseDirectory) => Scalar(key, fallback, v =>
            (System.IO.Path.GetFullPath(v, baseDirectory), null))!;

        public List<string> List(string key) => ListOf(config.GetSection(key));

        /// <summary>A JSON array (children 0, 1, ...) or a comma-separated single value.</summary>
        public static List<string> ListOf(IConfigurationSection s) =>
            s.Value is { } single
                ? [.. single.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)]
                : [.. s.GetChildren().Select(c => c.Value?.Trim() ?? "")];
    }
}
