using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using MobilityAgents.HomeAgent.Configuration;
using MobilityAgents.HomeAgent.Security;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>Configuration: defaults, every key validated with a message naming it, layering, TLS files.</summary>
public sealed class ConfigurationTests(TestPki pki)
{
    private HomeAgentOptions Load(Action<Dictionary<string, string?>> edit)
    {
        Dictionary<string, string?> keys = TestHomeAgent.Keys(pki);
        edit(keys);
        return HomeAgentConfiguration.Load(new ConfigurationBuilder().AddInMemoryCollection(keys).Build(), pki.Directory);
    }

    private IReadOnlyList<string> Errors(Action<Dictionary<string, string?>> edit) =>
        Assert.Throws<HomeAgentConfigurationException>(() => Load(edit)).Errors;

    [Fact]
    public void Defaults_apply_to_every_optional_key()
    {
        HomeAgentOptions o = HomeAgentConfiguration.Load(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["HomePrefix"] = "192.0.2.0/24",
            ["OuterAddress"] = "192.0.2.1",
        }).Build(), "/somewhere");

        Assert.Equal(IPEndPoint.Parse("0.0.0.0:4433"), o.Listen);
        Assert.Equal("/etc/mobilityagents/home-agent.pem", o.Certificate);
        Assert.Equal("/etc/mobilityagents/home-agent.key", o.PrivateKey);
        Assert.Equal("/etc/mobilityagents/ca.pem", o.ClientCa);
        Assert.Equal("", o.LanInterface);
        Assert.Equal(1480, o.TunnelMtu);
        Assert.Equal(TimeSpan.FromSeconds(90), o.DefaultLifetime);
        Assert.Equal(TimeSpan.FromSeconds(10), o.MinimumLifetime);
        Assert.Equal(TimeSpan.FromHours(1), o.MaximumLifetime);
        Assert.Empty(o.Authorizations);
        Assert.Empty(o.Operators);
        Assert.Equal(DatapathKind.Auto, o.Datapath);
        Assert.Equal(4433, o.UdpPort);
        Assert.Equal(TimeSpan.FromSeconds(15), o.KeepaliveInterval);
        Assert.Equal(X509RevocationMode.NoCheck, o.ClientCertificateRevocation);
        Assert.Equal(LogLevel.Information, o.LogLevel);
    }

    [Fact]
    public void Every_key_parses()
    {
        HomeAgentOptions o = Load(k =>
        {
            k["Listen"] = "[::]:8443";
            k["Certificate"] = "server.pem"; // relative: to the config file's folder
            k["LanInterface"] = "eth0";
            k["TunnelMtu"] = "1400";
            k["DefaultLifetimeSeconds"] = "60";
            k["MinimumLifetimeSeconds"] = "30";
            k["MaximumLifetimeSeconds"] = "600";
            k.Remove("Operators:0");
            k["Operators"] = "mailserver, ops";
            k["Authorizations:carol"] = "192.0.2.90,192.0.2.91";
            k["Datapath"] = "userspace";
            k["UdpPort"] = "4500";
            k["KeepaliveIntervalSeconds"] = "25";
            k["ClientCertificateRevocation"] = "online";
            k["LogLevel"] = "debug";
        });

        Assert.Equal(IPEndPoint.Parse("[::]:8443"), o.Listen);
        Assert.Equal(Path.Combine(pki.Directory, "server.pem"), o.Certificate);
        Assert.Equal("eth0", o.LanInterface);
        Assert.Equal(1400, o.TunnelMtu);
        Assert.Equal(TimeSpan.FromSeconds(60), o.DefaultLifetime);
        Assert.Equal(TimeSpan.FromSeconds(30), o.MinimumLifetime);
        Assert.Equal(TimeSpan.FromSeconds(600), o.MaximumLifetime);
        Assert.Equal(["mailserver", "ops"], o.Operators.Order());
        Assert.Equal([IPAddress.Parse("192.0.2.77"), IPAddress.Parse("192.0.2.78")], o.Authorizations["alice"]);
        Assert.Equal([IPAddress.Parse("192.0.2.90"), IPAddress.Parse("192.0.2.91")], o.Authorizations["carol"]);
        Assert.Equal(DatapathKind.Userspace, o.Datapath);
        Assert.Equal(4500, o.UdpPort);
        Assert.Equal(TimeSpan.FromSeconds(25), o.KeepaliveInterval);
        Assert.Equal(X509RevocationMode.Online, o.ClientCertificateRevocation);
        Assert.Equal(LogLevel.Debug, o.LogLevel);
        Assert.True(o.CreateAuthorizationPolicy().IsAuthorized("carol", IPAddress.Parse("192.0.2.91")));
    }

    [Theory]
    [InlineData("HomePrefix", "192.0.2.0/33", "HomePrefix: '192.0.2.0/33' is not an IPv4 prefix (e.g. 192.0.2.0/24)")]
    [InlineData("HomePrefix", "192.0.2.5/24", "HomePrefix: '192.0.2.5/24' has host bits set after /24: did you mean 192.0.2.0/24?")]
    [InlineData("HomePrefix", "2001:db8::/64", "HomePrefix: '2001:db8::/64' is not an IPv4 prefix (e.g. 192.0.2.0/24)")]
    [InlineData("HomePrefix", "", "HomePrefix: required (see --help)")]
    [InlineData("OuterAddress", "gateway", "OuterAddress: 'gateway' is not an IPv4 address (e.g. 192.0.2.1)")]
    [InlineData("OuterAddress", "224.0.0.1", "OuterAddress: '224.0.0.1' is not a unicast address (multicast)")]
    [InlineData("Listen", "localhost:4433", "Listen: 'localhost:4433' is not address:port (e.g. 0.0.0.0:4433)")]
    [InlineData("Listen", "0.0.0.0", "Listen: '0.0.0.0' is not address:port (e.g. 0.0.0.0:4433)")]
    [InlineData("TunnelMtu", "1500b", "TunnelMtu: '1500b' is not a whole number in 68..65515")]
    [InlineData("TunnelMtu", "67", "TunnelMtu: '67' is not a whole number in 68..65515")]
    [InlineData("DefaultLifetimeSeconds", "5", "DefaultLifetimeSeconds: 5 is outside MinimumLifetimeSeconds..MaximumLifetimeSeconds (10..3600)")]
    [InlineData("MinimumLifetimeSeconds", "7200", "MinimumLifetimeSeconds: 7200 is more than MaximumLifetimeSeconds 3600")]
    [InlineData("MaximumLifetimeSeconds", "100000", "MaximumLifetimeSeconds: '100000' is not a whole number in 3..86400")]
    [InlineData("Datapath", "fast", "Datapath: 'fast' is not auto, kernel, userspace or kernel-external")]
    [InlineData("UdpPort", "0", "UdpPort: '0' is not a whole number in 1..65535")]
    [InlineData("ClientCertificateRevocation", "sometimes", "ClientCertificateRevocation: 'sometimes' is not no-check, online or offline")]
    [InlineData("LogLevel", "Loud", "LogLevel: 'Loud' is not Trace, Debug, Information, Warning, Error or Critical")]
    [InlineData("LanInterface", "eth0/1", "LanInterface: 'eth0/1' is not an interface name (1..15 characters, no '/', ':' or spaces)")]
    [InlineData("Lsten", "0.0.0.0:4433", "Lsten: unknown key (known: Listen, Certificate, PrivateKey, ClientCa, HomePrefix, OuterAddress, LanInterface, TunnelMtu, DefaultLifetimeSeconds, MinimumLifetimeSeconds, MaximumLifetimeSeconds, Authorizations, Operators, Datapath, UdpPort, KeepaliveIntervalSeconds, ClientCertificateRevocation, LogLevel)")]
    public void A_bad_key_fails_with_a_message_naming_it(string key, string value, string message)
    {
        Assert.Equal([message], Errors(k => k[key] = value));
    }

    [Fact]
    public void Authorizations_are_checked_against_the_prefix_the_gateway_and_each_other()
    {
        IReadOnlyList<string> errors = Errors(k =>
        {
            k["Authorizations:bob:1"] = "192.0.2.77";   // alice's
            k["Authorizations:carol:0"] = "10.1.2.3";   // off the home prefix
            k["Authorizations:dave:0"] = "192.0.2.1";   // the gateway
            k["Authorizations:erin:0"] = "192.0.2.255"; // broadcast
            k["Authorizations:frank:0"] = "192.0.2";
            k["Authorizations:grace"] = "";
        });

        Assert.Equal(
        [
            "Authorizations:bob: 192.0.2.77 is also authorized for alice; an address belongs to one identity",
            "Authorizations:carol: 10.1.2.3 is not in HomePrefix 192.0.2.0/24",
            "Authorizations:dave: 192.0.2.1 is OuterAddress, the home agent's own address",
            "Authorizations:erin: 192.0.2.255 is the network or broadcast address of HomePrefix 192.0.2.0/24",
            "Authorizations:frank: '192.0.2' is not an IPv4 address",
            "Authorizations:grace: no home address (give one or more, e.g. [\"192.0.2.77\"])",
        ], errors);
    }

    [Fact]
    public void Every_error_is_reported_at_once()
    {
        IReadOnlyList<string> errors = Errors(k =>
        {
            k["HomePrefix"] = "192.0.2.0/33";
            k["TunnelMtu"] = "0";
            k["Datapath"] = "x";
        });
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void The_command_line_overrides_the_file_and_help_lists_every_key_with_its_default()
    {
        string dir = pki.NewFolder();
        string file = Path.Combine(dir, "home-agent.json");
        File.WriteAllText(file, """{ "HomePrefix": "192.0.2.0/24", "OuterAddress": "192.0.2.1", "TunnelMtu": 1480, "Certificate": "gw.pem" }""");

        HomeAgentOptions o = HomeAgentConfiguration.Load(["--config", file, "--TunnelMtu=1400", "--Listen", "127.0.0.1:9", "--Authorizations:alice=192.0.2.77"]);
        Assert.Equal(1400, o.TunnelMtu);
        Assert.Equal(IPEndPoint.Parse("127.0.0.1:9"), o.Listen);
        Assert.Equal(Path.Combine(dir, "gw.pem"), o.Certificate);
        Assert.Equal([IPAddress.Parse("192.0.2.77")], o.Authorizations["alice"]);

        Assert.Equal(["--config: '/nonexistent/ha.json' does not exist"],
            Assert.Throws<HomeAgentConfigurationException>(() => HomeAgentConfiguration.Load(["--config=/nonexistent/ha.json"])).Errors);
        Assert.Equal(["unexpected argument 'TunnelMtu=1': keys are given as --Key=value (see --help)"],
            Assert.Throws<HomeAgentConfigurationException>(() => HomeAgentConfiguration.Load(["--config", file, "TunnelMtu=1"])).Errors);

        File.WriteAllText(file, "{ \"HomePrefix\": ");
        Assert.StartsWith($"--config: '{file}' is not valid JSON",
            Assert.Throws<HomeAgentConfigurationException>(() => HomeAgentConfiguration.Load(["--config", file])).Errors.Single(), StringComparison.Ordinal);

        string usage = HomeAgentConfiguration.Usage();
        foreach (ConfigurationKey k in HomeAgentConfiguration.Keys)
        {
            Assert.Matches($@"(?m)^  {k.Name} +{System.Text.RegularExpressions.Regex.Escape(k.Default)}$", usage);
        }
    }

    [Fact]
    public void Certificate_files_are_checked_at_load_naming_the_key()
    {
        HomeAgentOptions good = Load(_ => { });
        using (TlsMaterial tls = TlsMaterial.Load(good, TimeProvider.System))
        {
            Assert.Equal("CN=home-agent", tls.ServerCertificate.Subject);
            Assert.True(tls.ServerCertificate.HasPrivateKey);
            Assert.Single(tls.ClientCas);
            Assert.Empty(tls.KeyFilesReadableByOthers);
        }

        Assert.Equal(["Certificate: '/nonexistent/gw.pem' does not exist", "ClientCa: '/nonexistent/ca.pem' does not exist"],
            Assert.Throws<HomeAgentConfigurationException>(() => TlsMaterial.Load(good with { Certificate = "/nonexistent/gw.pem", ClientCa = "/nonexistent/ca.pem" }, TimeProvider.System)).Errors);

        string wrongKey = Assert.Throws<HomeAgentConfigurationException>(() => TlsMaterial.Load(good with { PrivateKey = pki.AliceKey }, TimeProvider.System)).Errors.Single();
        Assert.StartsWith($"Certificate, PrivateKey: cannot load '{pki.ServerPem}' with the key in '{pki.AliceKey}'", wrongKey, StringComparison.Ordinal);

        Assert.Equal([$"ClientCa: 'CN=home-agent' in '{pki.ServerPem}' is not a CA certificate (basicConstraints CA:TRUE)"],
            Assert.Throws<HomeAgentConfigurationException>(() => TlsMaterial.Load(good with { ClientCa = pki.ServerPem }, TimeProvider.System)).Errors);

        string notPem = pki.Write("not-pem.txt", "hello");
        Assert.Equal([$"ClientCa: '{notPem}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"],
            Assert.Throws<HomeAgentConfigurationException>(() => TlsMaterial.Load(good with { ClientCa = notPem }, TimeProvider.System)).Errors);

        var later = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(3));
        Assert.StartsWith("Certificate: ", Assert.Throws<HomeAgentConfigurationException>(() => TlsMaterial.Load(good, later)).Errors.Single(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("192.0.2.77", true)]
    [InlineData("0.0.0.0", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("1", false)]
    [InlineData("1.2.3", false)]
    [InlineData("1.2.3.4.5", false)]
    [InlineData("01.2.3.4", false)]
    [InlineData("0x7f.0.0.1", false)]
    [InlineData("256.1.1.1", false)]
    [InlineData("1.2.3.4 ", false)]
    [InlineData("1..3.4", false)]
    [InlineData("::1", false)]
    [InlineData("", false)]
    public void Addresses_are_strict_dotted_quads(string s, bool ok)
    {
        Assert.Equal(ok, Ipv4.TryParse(s, out IPAddress a));
        if (ok)
        {
            Assert.Equal(IPAddress.Parse(s), a);
        }
    }
}
