using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using MobilityAgents.Protocol.V1;
using static MobilityAgents.HomeAgent.Tests.TestHomeAgent;

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>certs/make-certs.sh (the documented openssl commands) makes files the home agent accepts.</summary>
public sealed class MakeCertsTests(TestPki pki)
{
    [Fact]
    public async Task The_documented_openssl_commands_make_a_CA_server_and_clients_that_work_over_mTLS()
    {
        string? script = FindUp("certs/make-certs.sh");
        if (script is null || !OnPath("openssl") || !OnPath("bash"))
        {
            Assert.Skip("needs the repository's certs/make-certs.sh, bash and openssl");
        }

        string dir = Path.Combine(pki.NewFolder(), "certs");
        (int code, string output) = await RunAsync("bash", script, "-d", dir, "demo");
        Assert.True(code == 0, output);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir, "alice.key")));

        // Running it again never overwrites a key.
        (code, output) = await RunAsync("bash", script, "-d", dir, "client", "alice");
        Assert.NotEqual(0, code);
        Assert.Contains("exists: not overwriting it", output, StringComparison.Ordinal);

        await using TestHomeAgent ha = await StartAsync(pki, k =>
        {
            k["Certificate"] = Path.Combine(dir, "home-agent.pem");
            k["PrivateKey"] = Path.Combine(dir, "home-agent.key");
            k["ClientCa"] = Path.Combine(dir, "ca.pem");
        });

        using X509Certificate2 ca = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(dir, "ca.pem")));
        using X509Certificate2 alice = X509Certificate2.CreateFromPemFile(Path.Combine(dir, "alice.pem"), Path.Combine(dir, "alice.key"));
        using X509Certificate2 mail = X509Certificate2.CreateFromPemFile(Path.Combine(dir, "mailserver.pem"), Path.Combine(dir, "mailserver.key"));
        using X509Certificate2 server = X509Certificate2.CreateFromPemFile(Path.Combine(dir, "home-agent.pem"), Path.Combine(dir, "home-agent.key"));

        using var aliceChannel = Channel(ha.Address, ca, alice);
        RegisterReply r = await new Protocol.V1.HomeAgent.HomeAgentClient(aliceChannel).RegisterAsync(Request(), Call);
        Assert.Equal(Alice1, r.HomeAddress);

        using var mailChannel = Channel(ha.Address, ca, mail);
        Binding b = await new Protocol.V1.HomeAgent.HomeAgentClient(mailChannel).GetBindingAsync(new GetBindingRequest { Identity = "alice" }, Call);
        Assert.True(b.Reachable);

        // The server's certificate (serverAuth only) is no client certificate.
        using var serverAsClient = Channel(ha.Address, ca, server);
        RefusalTests.AssertHandshakeRefused(await Assert.ThrowsAsync<RpcException>(() =>
            new Protocol.V1.HomeAgent.HomeAgentClient(serverAsClient).RegisterAsync(Request(), Call).ResponseAsync));
    }

    private static string? FindUp(string relative)
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(p => File.Exists(Path.Combine(p, tool)));

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(Ct);
        Task<string> stderr = p.StandardError.ReadToEndAsync(Ct);
        await p.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        return (p.ExitCode, await stdout + await stderr);
    }
}
