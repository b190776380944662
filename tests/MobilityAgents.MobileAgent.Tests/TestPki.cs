using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

[assembly: AssemblyFixture(typeof(MobilityAgents.MobileAgent.Tests.TestPki))]

namespace MobilityAgents.MobileAgent.Tests;

/// <summary>
/// Throwaway certificates for the whole test assembly, made with CertificateRequest and written to
/// a temporary folder as PEM (what both daemons read): a CA, the home agent's server certificate
/// (SAN 192.0.2.1, the lab gateway's address, and 127.0.0.1), client certificates CN=alice, bob
/// and mailserver (the operator that reads bindings), and a foreign CA the agent must not trust.
/// </summary>
public sealed class TestPki : IDisposable
{
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    public TestPki()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("ma-mobileagent-tests-").FullName;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Ca = MakeCa("CN=MobilityAgents Test CA", now);
        ForeignCa = MakeCa("CN=Some Other CA", now);
        Server = Issue(Ca, "CN=home-agent", ServerAuth, now, san: true);
        Alice = Issue(Ca, "CN=alice", ClientAuth, now);
        Bob = Issue(Ca, "CN=bob", ClientAuth, now);
        Mailserver = Issue(Ca, "CN=mailserver", ClientAuth, now);

        CaPem = Write("ca.pem", Ca.ExportCertificatePem());
        ForeignCaPem = Write("foreign-ca.pem", ForeignCa.ExportCertificatePem());
        ServerPem = Write("home-agent.pem", Server.ExportCertificatePem());
        ServerKey = Write("home-agent.key", Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        AlicePem = Write("alice.pem", Alice.ExportCertificatePem());
        AliceKey = Write("alice.key", Alice.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        BobPem = Write("bob.pem", Bob.ExportCertificatePem());
        BobKey = Write("bob.key", Bob.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 ForeignCa { get; }

    public X509Certificate2 Server { get; }

    public X509Certificate2 Alice { get; }

    public X509Certificate2 Bob { get; }

    public X509Certificate2 Mailserver { get; }

    public string CaPem { get; }

    public string ForeignCaPem { get; }

    public string ServerPem { get; }

    public string ServerKey { get; }

    public string AlicePem { get; }

    public string AliceKey { get; }

    public string BobPem { get; }

    public string BobKey { get; }

    public string Write(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    public void Dispose()
    {
        foreach (X509Certificate2 c in new[] { Ca, ForeignCa, Server, Alice, Bob, Mailserver })
        {
            c.Dispose();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static X509Certificate2 MakeCa(string subject, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        return req.CreateSelfSigned(now.AddDays(-30), now.AddYears(1));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, string usage, DateTimeOffset now, bool san = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (san)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Parse(Lab.HomeAgentAddress));
            names.AddIpAddress(IPAddress.Loopback);
            req.CertificateExtensions.Add(names.Build());
        }

        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = req.Create(ca, now.AddHours(-1), now.AddDays(2), serial);
        return issued.CopyWithPrivateKey(key);
    }
}
