using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;

namespace MobilityAgents.MobileAgent.Configuration;

/// <summary>One configuration key: what <c>--help</c> prints and what the loader accepts.</summary>
/// <param name="Name">The key as written in the JSON file, after <c>MA_MOBILEAGENT__</c>, or after <c>--</c>.</param>
/// <param name="Default">Its default, or "(required)".</param>
/// <param name="Description">One line a user can act on.</param>
public sealed record ConfigurationKey(string Name, string Default, string Description);

/// <summary>
/// Loads <see cref="MobileAgentOptions"/>: a JSON file (default <see cref="DefaultConfigPath"/>,
/// <c>--config PATH</c>), overridden by environment variables <c>MA_MOBILEAGENT__Key</c> (lists
/// with <c>__</c>: <c>MA_MOBILEAGENT__TcpPorts__0=25</c>), overridden by the command line
/// (<c>--Key=value</c> or <c>--Key value</c>). Every problem is reported at once, each naming its key.
/// </summary>
public static class MobileAgentConfiguration
{
    public const string DefaultConfigPath = "/etc/mobilityagents/mobile-agent.json";
    public const string EnvironmentPrefix = "MA_MOBILEAGENT__";
    public const string DefaultTunnelName = "ma-tun0";
    public const string DefaultCertificate = "/etc/mobilityagents/mobile-agent.pem";
    public const string DefaultPrivateKey = "/etc/mobilityagents/mobile-agent.key";
    public const string DefaultCa = "/etc/mobilityagents/ca.pem";

    /// <summary>Longest lifetime a laptop may ask for (the home agent clamps to its own range anyway).</summary>
    public const int MaxLifetimeSeconds = 86_400;

    /// <summary>The home agent refuses longer device ids.</summary>
    public const int MaxDeviceIdLength = 128;

    private const string Required = "(required)";

    /// <summary>
    /// The application-specific key that /etc/machine-id is hashed with for the default device id:
    /// machine-id(5) asks that the id itself never leave the machine (the same scheme as
    /// sd_id128_get_machine_app_specific: HMAC-SHA256 keyed by the machine id).
    /// </summary>
    private static readonly byte[] DeviceIdApplicationKey = Convert.FromHexString("6d6f62696c6974796167656e7473a1b2");

    /// <summary>Every key, in the order <c>--help</c> prints them.</summary>
    public static readonly IReadOnlyList<ConfigurationKey> Keys =
    [
        new("HomeAgent", Required, "the home agent's control endpoint, https://host:port (mutual TLS 1.3, HTTP/2)"),
        new("HomeAgentAddress", "(HomeAgent's host, if an IPv4 address)", "the home agent's outer tunnel address: the care-of address is the source the kernel picks for the route to it (the registration reply's value replaces it)"),
        new("Certificate", DefaultCertificate, "PEM file: this laptop's client certificate, intermediates after it; its subject CN is the identity (relative paths: to the config file's folder)"),
        new("PrivateKey", DefaultPrivateKey, "PEM file: the client certificate's private key (PKCS#8, PKCS#1 or SEC1)"),
        new("Ca", DefaultCa, "PEM file: the CA certificate(s) the home agent's certificate must chain to; no system root is trusted"),
        new("HomeAddress", "\"\"", "the home address to claim, e.g. 192.0.2.77; empty = the one this identity is authorized for"),
        new("DeviceId", "(from /etc/machine-id, else the host name)", "stable id of this device; another device of the same identity registering the same home address replaces this one (at most 128 characters)"),
        new("LifetimeSeconds", "0", "binding lifetime to ask for, 0..86400; 0 = the home agent's default (heartbeats go 3 times per granted lifetime)"),
        new("TunnelName", DefaultTunnelName, "name of the mirror ipip link: 1..15 characters starting with 'ma', no '/', ':' or spaces"),
        new("HomePrefixThroughTunnel", "false", "route the whole home prefix through the tunnel with the home address as source (the route to the home agent is pinned to the visited network)"),
        new("TcpPorts", "[]", "locally generated TCP to these ports leaves through the tunnel (marked with fwmark 0x100000), e.g. [25] or 25,110"),
        new("FwMarkSelection", "false", "packets carrying fwmark 0x100000 (set by your own rules) leave through the tunnel with the home address as source"),
        new("Datapath", "auto", "auto (kernel ipip where the kernel can create ipip links, else userspace; logged at start), kernel, or userspace (a TUN device, the agent encapsulates); ipip-in-UDP always goes through userspace"),
        new("Encapsulation", "auto", "auto (the home agent decides: ipip-in-UDP when it sees NAT between us, ipip otherwise), ipip, or udp (ipip-in-UDP always, e.g. when a firewall drops IP protocol 4)"),
        new("Namespace", "\"\"", "run in this named network namespace (/run/netns/NAME, as ip netns add makes); empty = the process's own"),
        new("LogLevel", "Information", "Trace, Debug, Information, Warning, Error or Critical"),
    ];

    private static readonly FrozenSet<string> KnownKeys = Keys.Select(k => k.Name).ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>True if the command line asks for usage.</summary>
    public static bool WantsHelp(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Any(a => a is "--help" or "-h" or "-?" or "help");
    }

    /// <summary>The usage text: the command line and every key with its default.</summary>
    public static string Usage()
    {
        var sb = new StringBuilder();
        sb.AppendLine("usage: MobilityAgents.MobileAgent [--config PATH] [--Key=value ...]");
        sb.AppendLine();
        sb.AppendLine("The mobile agent of MobilityAgents (the laptop side): finds its care-of address (the source the");
        sb.AppendLine("kernel picks towards the home agent), registers it over gRPC with mutual TLS 1.3, keeps the");
        sb.AppendLine("binding alive with heartbeats, re-registers when the laptop moves, and programs the mirror ipip");
        sb.AppendLine("tunnel, the home address on it and the policy routing; a clean stop removes all of it.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Configuration: the JSON file --config PATH (default {DefaultConfigPath}), then");
        sb.AppendLine(CultureInfo.InvariantCulture, $"environment variables {EnvironmentPrefix}Key (lists: {EnvironmentPrefix}TcpPorts__0=25),");
        sb.AppendLine("then the command line (--Key=value; lists: --TcpPorts=25,110).");
        sb.AppendLine();
        sb.AppendLine("Keys (default):");
        foreach (ConfigurationKey k in Keys)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {k.Name,-25} {k.Default}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {"",-25} {k.Description}");
        }

        sb.AppendLine();
        sb.AppendLine("Exit status: 0 after a clean stop (SIGTERM: deregistered, tunnel removed); 1 if it cannot start;");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{MobileAgentHost.ExitBindingReplaced} when another device of the same identity took over the home address (do not restart");
        sb.AppendLine(CultureInfo.InvariantCulture, $"automatically: the two would take it from each other); {MobileAgentHost.ExitRefused} when the home agent refuses the");
        sb.AppendLine(CultureInfo.InvariantCulture, $"registration for good (not authorized); {MobileAgentHost.ExitConfigurationError} for a configuration error.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"With systemd: Restart=on-failure and RestartPreventExitStatus={MobileAgentHost.ExitBindingReplaced} {MobileAgentHost.ExitRefused} {MobileAgentHost.ExitConfigurationError}.");
        return sb.ToString();
    }

    /// <summary>Builds the configuration from the command line and loads it. Throws <see cref="MobileAgentConfigurationException"/>.</summary>
    public static MobileAgentOptions Load(string[] args)
    {
        IConfiguration config = Build(args, out string configDirectory, out string? missingDefault);
        try
        {
            return Load(config, configDirectory);
        }
        catch (MobileAgentConfigurationException e) when (missingDefault is not null)
        {
            throw new MobileAgentConfigurationException([.. e.Errors, $"--config: there is no file at {missingDefault} (the default): give --config PATH, or every key in the environment or on the command line"]);
        }
    }

    /// <summary>The layered configuration (file, environment, command line) without validation.</summary>
    public static IConfiguration Build(string[] args, out string configDirectory, out string? missingDefault)
    {
        ArgumentNullException.ThrowIfNull(args);
        missingDefault = null;
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
            throw new MobileAgentConfigurationException(errors);
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
            throw new MobileAgentConfigurationException($"--config: '{path}' is not valid JSON: {e.InnerException?.Message ?? e.Message}");
        }
    }

    /// <summary>
    /// Validates <paramref name="config"/> into options; relative file paths resolve against
    /// <paramref name="baseDirectory"/>; <paramref name="netnsRoot"/> is where named namespaces live.
    /// </summary>
    public static MobileAgentOptions Load(IConfiguration config, string baseDirectory, string netnsRoot = "/run/netns")
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
        Uri? homeAgent = r.Scalar<Uri?>("HomeAgent", null, ParseEndpoint);
        IPAddress? fromEndpoint = homeAgent is not null && TryParseIpv4(homeAgent.Host, out IPAddress literal) ? literal : null;
        IPAddress? homeAgentAddress = r.Scalar("HomeAgentAddress", fromEndpoint, v =>
            !TryParseIpv4(v, out IPAddress a) ? (null, "is not an IPv4 address (e.g. 192.0.2.1)")
            : NotUnicast(a) is { } why ? (null, $"is {why}")
            : (a, null));
        if (homeAgentAddress is null && homeAgent is not null && errors.Remove("HomeAgentAddress: required (see --help)"))
        {
            // Say why the default did not apply.
            errors.Add($"HomeAgentAddress: required when HomeAgent's host ('{homeAgent.Host}') is not an IPv4 address: the home agent's outer tunnel address, e.g. 192.0.2.1");
        }

        string certificate = r.Path("Certificate", DefaultCertificate, baseDirectory);
        string privateKey = r.Path("PrivateKey", DefaultPrivateKey, baseDirectory);
        string ca = r.Path("Ca", DefaultCa, baseDirectory);
        IPAddress? homeAddress = r.Scalar<IPAddress?>("HomeAddress", IPAddress.None, v =>
            !TryParseIpv4(v, out IPAddress a) ? (null, "is not an IPv4 address (e.g. 192.0.2.77)")
            : NotUnicast(a) is { } why ? (null, $"is {why}")
            : (a, null));
        if (IPAddress.None.Equals(homeAddress))
        {
            homeAddress = null; // not given: the identity's own
        }

        string deviceId = r.Scalar("DeviceId", "", v =>
            v.Length <= MaxDeviceIdLength && !v.Any(char.IsControl) ? (v, null) : (null, $"is not at most {MaxDeviceIdLength} printable characters"))!;
        if (deviceId.Length == 0)
        {
            deviceId = DefaultDeviceId();
        }

        int lifetime = r.Int("LifetimeSeconds", 0, 0, MaxLifetimeSeconds);
        string tunnelName = r.Scalar("TunnelName", DefaultTunnelName, v =>
            !IsInterfaceName(v) ? (null, "is not an interface name (1..15 characters, no '/', ':' or spaces)")
            : !v.StartsWith(Core.Ownership.LinkNamePrefix, StringComparison.Ordinal) ? (null, $"does not start with '{Core.Ownership.LinkNamePrefix}' (the prefix that marks the agents' links as their own)")
            : (v, null))!;
        bool homePrefixThroughTunnel = r.Bool("HomePrefixThroughTunnel");
        bool fwMarkSelection = r.Bool("FwMarkSelection");
        var ports = new List<ushort>();
        foreach (string p in r.List("TcpPorts"))
        {
            if (ushort.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) && port > 0)
            {
                if (!ports.Contains(port))
                {
                    ports.Add(port);
                }
            }
            else
            {
                errors.Add($"TcpPorts: '{p}' is not a TCP port (1..65535)");
            }
        }

        string? netns = r.Scalar<string?>("Namespace", "", v =>
            v.Length > 255 || v.Contains('/', StringComparison.Ordinal) || v is "." or ".." || v.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))
                ? (null, "is not a network namespace name (as ip netns add takes: no '/' or spaces)")
                : !File.Exists(Path.Combine(netnsRoot, v))
                    ? (null, $"is not a network namespace: {Path.Combine(netnsRoot, v)} does not exist (ip netns add {v})")
                    : (v, null));
        MobileDatapath datapath = r.Scalar("Datapath", MobileDatapath.Auto, v => v.ToUpperInvariant() switch
        {
            "AUTO" => (MobileDatapath.Auto, null),
            "KERNEL" => (MobileDatapath.Kernel, null),
            "USERSPACE" => (MobileDatapath.Userspace, null),
            _ => (MobileDatapath.Auto, "is not auto, kernel or userspace"),
        });
        MobileEncapsulation encapsulation = r.Scalar("Encapsulation", MobileEncapsulation.Auto, v => v.ToUpperInvariant() switch
        {
            "AUTO" => (MobileEncapsulation.Auto, null),
            "IPIP" => (MobileEncapsulation.Ipip, null),
            "UDP" => (MobileEncapsulation.Udp, null),
            _ => (MobileEncapsulation.Auto, "is not auto, ipip or udp"),
        });
        LogLevel logLevel = r.Scalar("LogLevel", LogLevel.Information, v =>
            Enum.TryParse(v, ignoreCase: true, out LogLevel l) && l != LogLevel.None && Enum.IsDefined(l) && !int.TryParse(v, CultureInfo.InvariantCulture, out _)
                ? (l, null) : (LogLevel.Information, "is not Trace, Debug, Information, Warning, Error or Critical"));

        if (errors.Count > 0)
        {
            throw new MobileAgentConfigurationException(errors);
        }

        return new MobileAgentOptions
        {
            HomeAgent = homeAgent!,
            HomeAgentAddress = homeAgentAddress!,
            Certificate = certificate,
            PrivateKey = privateKey,
            Ca = ca,
            HomeAddress = homeAddress,
            DeviceId = deviceId,
            Lifetime = TimeSpan.FromSeconds(lifetime),
            TunnelName = tunnelName,
            HomePrefixThroughTunnel = homePrefixThroughTunnel,
            TcpPorts = ports,
            FwMarkSelection = fwMarkSelection,
            Namespace = string.IsNullOrEmpty(netns) ? null : netns,
            Datapath = datapath,
            Encapsulation = encapsulation,
            LogLevel = logLevel,
        };
    }

    /// <summary>
    /// The default device id: /etc/machine-id hashed with an application key (32 hex digits; stable
    /// for this installation, and the machine id itself never leaves the laptop), else the host name.
    /// </summary>
    public static string DefaultDeviceId(string machineIdPath = "/etc/machine-id")
    {
        try
        {
            string id = File.ReadAllText(machineIdPath).Trim();
            if (id.Length == 32 && id.All(Uri.IsHexDigit))
            {
                byte[] mac = HMACSHA256.HashData(Convert.FromHexString(id), DeviceIdApplicationKey);
                return Convert.ToHexStringLower(mac.AsSpan(0, 16));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        string host = Environment.MachineName;
        return host.Length > MaxDeviceIdLength ? host[..MaxDeviceIdLength] : host;
    }

    /// <summary>
    /// Strict IPv4: exactly four decimal octets without leading zeros ("192.0.2.77").
    /// <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> also takes inet_aton forms ("1",
    /// "0x7f.1", octal "010.0.0.1"), which would turn a typo into a valid but wrong address.
    /// </summary>
    public static bool TryParseIpv4(string? s, out IPAddress address)
    {
        address = IPAddress.None;
        if (string.IsNullOrEmpty(s))
        {
            return false;
        }

        string[] parts = s.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        var bytes = new byte[4];
        for (int i = 0; i < 4; i++)
        {
            string p = parts[i];
            if (p.Length is 0 or > 3 || (p.Length > 1 && p[0] == '0') || !p.All(char.IsAsciiDigit) ||
                !byte.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out bytes[i]))
            {
                return false;
            }
        }

        address = new IPAddress(bytes);
        return true;
    }

    private static (Uri? Value, string? Problem) ParseEndpoint(string v)
    {
        if (!Uri.TryCreate(v, UriKind.Absolute, out Uri? u) || u.Scheme != Uri.UriSchemeHttps)
        {
            return (null, "is not https://host:port (the home agent's control endpoint, e.g. https://gw.example.net:4433)");
        }

        if (u.AbsolutePath != "/" || u.Query.Length > 0 || u.Fragment.Length > 0 || u.UserInfo.Length > 0)
        {
            return (null, "must be https://host:port alone, without path, query or user");
        }

        if (u.HostNameType == UriHostNameType.IPv4 && !TryParseIpv4(u.Host, out _))
        {
            return (null, $"has host '{u.Host}', not a dotted-quad IPv4 address");
        }

        if (u.HostNameType == UriHostNameType.IPv6)
        {
            return (null, "has an IPv6 host: the home agent is reached over IPv4");
        }

        return (u, null);
    }

    private static string? NotUnicast(IPAddress a)
    {
        byte[] b = a.GetAddressBytes();
        return a.Equals(IPAddress.Any) || a.Equals(IPAddress.Broadcast) || b[0] == 0 || b[0] >= 224 ? "not a unicast address"
            : b[0] == 127 ? "a loopback address"
            : null;
    }

    private static bool IsInterfaceName(string v) =>
        v.Length is > 0 and <= 15 && !v.Any(c => c > 127 || char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or ':' or '"' or '\'' or '\\') && v is not "." and not "..";

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

        public bool Bool(string key) => Scalar(key, false, v => v.ToUpperInvariant() switch
        {
            "TRUE" or "YES" or "1" => (true, null),
            "FALSE" or "NO" or "0" => (false, null),
            _ => (false, "is not true or false"),
        });

        public string Path(string key, string fallback, string baseDirectory) => Scalar(key, fallback, v =>
            (System.IO.Path.GetFullPath(v, baseDirectory), null))!;

        /// <summary>A JSON array (children 0, 1, ...) or a comma-separated single value.</summary>
        public List<string> List(string key)
        {
            IConfigurationSection s = config.GetSection(key);
            return s.Value is { } single
                ? [.. single.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)]
                : [.. s.GetChildren().Select(c => c.Value?.Trim() ?? "")];
        }
    }
}
