using System.Net;
using Microsoft.Extensions.Configuration;
using MobilityAgents.Core;
using MobilityAgents.MobileAgent.Configuration;

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>Loading and validating the configuration: defaults, layering, and one message per bad key naming it.</summary>
public sealed class ConfigurationTests(TestPki pki)
{
    private static Dictionary<string, string?> Minimal() => new() { ["HomeAgent"] = "https://192.0.2.1:4433" };

    private static MobileAgentOptions Load(Dictionary<string, string?> keys, string baseDirectory = "/etc/mobilityagents") =>
        MobileAgentConfiguration.Load(new ConfigurationBuilder().AddInMemoryCollection(keys).Build(), baseDirectory);

    private static IReadOnlyList<string> Errors(Dictionary<string, string?> keys) =>
        Assert.Throws<MobileAgentConfigurationException>(() => Load(keys)).Errors;

    [Fact]
    public void Defaults_need_only_the_home_agent_endpoint()
    {
        MobileAgentOptions o = Load(Minimal());
        Assert.Equal(new Uri("https://192.0.2.1:4433"), o.HomeAgent);
        Assert.Equal(IPAddress.Parse("192.0.2.1"), o.HomeAgentAddress); // the endpoint's host
        Assert.Equal("/etc/mobilityagents/mobile-agent.pem", o.Certificate);
        Assert.Equal("/etc/mobilityagents/mobile-agent.key", o.PrivateKey);
        Assert.Equal("/etc/mobilityagents/ca.pem", o.Ca);
        Assert.Null(o.HomeAddress);
        Assert.Equal(MobileAgentConfiguration.DefaultDeviceId(), o.DeviceId);
        Assert.Equal(TimeSpan.Zero, o.Lifetime);
        Assert.Equal("ma-tun0", o.TunnelName);
        Assert.False(o.HomePrefixThroughTunnel);
        Assert.Empty(o.TcpPorts);
        Assert.False(o.FwMarkSelection);
        Assert.Equal(0u, o.FwMark);
        Assert.Null(o.Namespace);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Information, o.LogLevel);
    }

    [Fact]
    public void Every_key_is_read()
    {
        Dictionary<string, string?> k = Minimal();
        k["HomeAgent"] = "https://gw.example.net:4433";
        k["HomeAgentAddress"] = "192.0.2.254";
        k["Certificate"] = "laptop.pem";
        k["PrivateKey"] = "/keys/laptop.key";
        k["Ca"] = "ca.pem";
        k["HomeAddress"] = "192.0.2.77";
        k["DeviceId"] = "thinkpad";
        k["LifetimeSeconds"] = "120";
        k["TunnelName"] = "mahome";
        k["HomePrefixThroughTunnel"] = "true";
        k["TcpPorts:0"] = "25";
        k["TcpPorts:1"] = "110";
        k["FwMarkSelection"] = "true";
        k["LogLevel"] = "debug";
        MobileAgentOptions o = Load(k, "/etc/ma");
        Assert.Equal(IPAddress.Parse("192.0.2.254"), o.HomeAgentAddress);
        Assert.Equal("/etc/ma/laptop.pem", o.Certificate); // relative to the configuration file's folder
        Assert.Equal("/keys/laptop.key", o.PrivateKey);
        Assert.Equal(IPAddress.Parse("192.0.2.77"), o.HomeAddress);
        Assert.Equal("thinkpad", o.DeviceId);
        Assert.Equal(TimeSpan.FromSeconds(120), o.Lifetime);
        Assert.Equal("mahome", o.TunnelName);
        Assert.True(o.HomePrefixThroughTunnel);
        Assert.Equal([(ushort)25, (ushort)110], o.TcpPorts);
        Assert.True(o.FwMarkSelection);
        Assert.Equal(Ownership.FwMarkBit, o.FwMark);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, o.LogLevel);
    }

    [Fact]
    public void Tcp_ports_may_be_a_comma_separated_value_and_imply_the_mark()
    {
        Dictionary<string, string?> k = Minimal();
        k["TcpPorts"] = "25, 110,25";
        MobileAgentOptions o = Load(k);
        Assert.Equal([(ushort)25, (ushort)110], o.TcpPorts);
        Assert.Equal(Ownership.FwMarkBit, o.FwMark);
    }

    [Theory]
    [InlineData("HomeAgent", "https://192.0.2.1:4433/mobility", "HomeAgent: 'https://192.0.2.1:4433/mobility' must be https://host:port alone")]
    [InlineData("HomeAgent", "192.0.2.1:4433", "HomeAgent: '192.0.2.1:4433' is not https://host:port")]
    [InlineData("HomeAgentAddress", "224.0.0.1", "HomeAgentAddress: '224.0.0.1' is not a unicast address")]
    [InlineData("HomeAgentAddress", "1", "HomeAgentAddress: '1' is not an IPv4 address")]
    [InlineData("HomeAddress", "127.0.0.1", "HomeAddress: '127.0.0.1' is a loopback address")]
    [InlineData("DeviceId", "a\u0001b", "DeviceId: ")]
    [InlineData("LifetimeSeconds", "86401", "LifetimeSeconds: '86401' is not a whole number in 0..86400")]
    [InlineData("TunnelName", "ma-a-very-long-name", "TunnelName: 'ma-a-very-long-name' is not an interface name")]
    [InlineData("TunnelName", "ma/0", "TunnelName: 'ma/0' is not an interface name")]
    [InlineData("HomePrefixThroughTunnel", "maybe", "HomePrefixThroughTunnel: 'maybe' is not true or false")]
    [InlineData("FwMarkSelection", "2", "FwMarkSelection: '2' is not true or false")]
    [InlineData("TcpPorts", "0", "TcpPorts: '0' is not a TCP port")]
    [InlineData("TcpPorts", "smtp", "TcpPorts: 'smtp' is not a TCP port")]
    [InlineData("Namespace", "../etc", "Namespace: '../etc' is not a network namespace name")]
    [InlineData("LogLevel", "Loud", "LogLevel: 'Loud' is not Trace, Debug")]
    [InlineData("Bogus", "1", "Bogus: unknown key")]
    public void A_bad_value_is_reported_naming_its_key(string key, string value, string message)
    {
        Dictionary<string, string?> k = Minimal();
        k[key] = value;
        Assert.Contains(Errors(k), e => e.StartsWith(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        IReadOnlyList<string> errors = Errors(new() { ["LifetimeSeconds"] = "x", ["TunnelName"] = "eth0" });
        Assert.Contains(errors, e => e.StartsWith("HomeAgent: required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("LifetimeSeconds:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("TunnelName:", StringComparison.Ordinal));
    }

    [Fact]
    public void A_home_agent_named_by_dns_needs_its_tunnel_address()
    {
        Assert.Contains(Errors(new() { ["HomeAgent"] = "https://gw.example.net:4433" }),
            e => e.StartsWith("HomeAgentAddress: required when HomeAgent's host ('gw.example.net') is not an IPv4 address", StringComparison.Ordinal));
    }

    [Fact]
    public void The_file_is_overridden_by_the_environment_and_the_command_line()
    {
        string file = pki.Write($"layers-{Guid.NewGuid():N}.json", """
            { "HomeAgent": "https://192.0.2.1:4433", "LifetimeSeconds": 5, "TunnelName": "ma-file", "DeviceId": "from-file" }
            """);
        Environment.SetEnvironmentVariable("MA_MOBILEAGENT__DeviceId", "from-env");
        Environment.SetEnvironmentVariable("MA_MOBILEAGENT__TunnelName", "ma-env");
        try
        {
            MobileAgentOptions o = MobileAgentConfiguration.Load(["--config", file, "--TunnelName=ma-cli", "--TcpPorts", "25"]);
            Assert.Equal(TimeSpan.FromSeconds(5), o.Lifetime); // file
            Assert.Equal("from-env", o.DeviceId);             // environment over file
            Assert.Equal("ma-cli", o.TunnelName);             // command line over both
            Assert.Equal([(ushort)25], o.TcpPorts);
            Assert.Equal(Path.Combine(pki.Directory, "mobile-agent.pem"), MobileAgentConfiguration.Load(["--config", file, "--Certificate=mobile-agent.pem"]).Certificate);
        }
        finally
        {
            Environment.SetEnvironmentVariable("MA_MOBILEAGENT__DeviceId", null);
            Environment.SetEnvironmentVariable("MA_MOBILEAGENT__TunnelName", null);
        }
    }

    [Fact]
    public void The_default_device_id_is_derived_from_the_machine_id_without_revealing_it()
    {
        const string machineId = "3d1219c7c4c5404aaa1f6d2a48adfda4";
        string path = pki.Write($"machine-id-{Guid.NewGuid():N}", machineId + "\n");
        string id = MobileAgentConfiguration.DefaultDeviceId(path);
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.NotEqual(machineId, id);
        Assert.Equal(id, MobileAgentConfiguration.DefaultDeviceId(path)); // stable
        Assert.Equal(Environment.MachineName, MobileAgentConfiguration.DefaultDeviceId("/nonexistent/machine-id"));
    }

    [Fact]
    public void Tls_files_are_checked_at_start_naming_the_key()
    {
        MobileAgentOptions good = Load(Minimal()) with { Certificate = pki.AlicePem, PrivateKey = pki.AliceKey, Ca = pki.CaPem };
        using (ClientTls tls = ClientTls.Load(good, TimeProvider.System))
        {
            Assert.Equal("alice", tls.Identity);
        }

        IReadOnlyList<string> Problems(MobileAgentOptions o) =>
            Assert.Throws<MobileAgentConfigurationException>(() => ClientTls.Load(o, TimeProvider.System)).Errors;

        Assert.Contains(Problems(good with { Certificate = "/nonexistent.pem" }), e => e.StartsWith("Certificate: '/nonexistent.pem' does not exist", StringComparison.Ordinal));
        Assert.Contains(Problems(good with { PrivateKey = pki.BobKey }), e => e.StartsWith("Certificate, PrivateKey: cannot load", StringComparison.Ordinal));
        Assert.Contains(Problems(good with { Ca = pki.AlicePem }), e => e.StartsWith("Ca: 'CN=alice'", StringComparison.Ordinal) && e.Contains("not a CA certificate", StringComparison.Ordinal));
        Assert.Contains(Problems(good with { Certificate = pki.ServerPem, PrivateKey = pki.ServerKey }), e => e.Contains("lacks clientAuth", StringComparison.Ordinal));
    }
}
