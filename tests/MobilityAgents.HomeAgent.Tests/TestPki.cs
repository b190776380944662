using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

[assembly: AssemblyFixture(typeof(MobilityAgents.HomeAgent.Tests.TestPki))]

namespace MobilityAgents.HomeAgent.Tests;

/// <summary>
/// Throwaway certificates for the whole test assembly, made with CertificateRequest and written to
/// a temporary folder as PEM (what the daemon reads): our CA, the home agent's server certificate
/// (SAN 127.0.0.1, localhost), client certificates CN=alice, bob, mailserver; and for refusals a
/// foreign CA with its own "alice", a CN-less client, an expired client, and a client certificate
/// without the clientAuth usage.
/// </summary>
public sealed class TestPki : IDisposable
{
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    public TestPki()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("ma-homeagent-tests-").FullName;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Ca = MakeCa("CN=MobilityAgents Test CA", now);
        ForeignCa = MakeCa("CN=Some Other CA", now);

        Server = Issue(Ca, "CN=home-agent", ServerAuth, now.AddHours(-1), now.AddDays(2), san: true);
        Alice = Issue(Ca, "CN=alice, O=MobilityAgents Tests", ClientAuth, now.AddHours(-1), now.AddDays(2));
        Bob = Issue(Ca, "CN=bob", ClientAuth, now.AddHours(-1), now.AddDays(2));
        Mailserver = Issue(Ca, "CN=mailserver", ClientAuth, now.AddHours(-1), now.AddDays(2));
        ForeignAlice = Issue(ForeignCa, "CN=alice", ClientAuth, now.AddHours(-1), now.AddDays(2));
        NoCommonName = Issue(Ca, "O=MobilityAgents Tests, OU=laptops", ClientAuth, now.AddHours(-1), now.AddDays(2));
        ExpiredAlice = Issue(Ca, "CN=alice", ClientAuth, now.AddDays(-10), now.AddDays(-1));
        ServerAuthOnly = Issue(Ca, "CN=alice", ServerAuth, now.AddHours(-1), now.AddDays(2));

        CaPem = Write("ca.pem", Ca.ExportCertificatePem());
        ServerPem = Write("home-agent.pem", Server.ExportCertificatePem());
        ServerKey = Write("home-agent.key", Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        AliceKey = Write("alice.key", Alice.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 ForeignCa { get; }

    public X509Certificate2 Server { get; }

    public X509Certificate2 Alice { get; }

    public X509Certificate2 Bob { get; }

    public X509Certificate2 Mailserver { get; }

    public X509Certificate2 ForeignAlice { get; }

    public X509Certificate2 NoCommonName { get; }

    public X509Certificate2 ExpiredAlice { get; }

    public X509Certificate2 ServerAuthOnly { get; }

    public string CaPem { get; }

    public string ServerPem { get; }

    public string ServerKey { get; }

    /// <summary>A private key that does not belong to <see cref="ServerPem"/>.</summary>
    public string AliceKey { get; }

    /// <summary>A fresh folder inside <see cref="Directory"/> (deleted with it) for tests that write their own files.</summary>
    public string NewFolder() => System.IO.Directory.CreateDirectory(Path.Combine(Directory, Guid.NewGuid().ToString("N"))).FullName;

    public string Write(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    public void Dispose()
    {
        foreach (X509Certificate2 c in new[] { Ca, ForeignCa, Server, Alice, Bob, Mailserver, ForeignAlice, NoCommonName, ExpiredAlice, ServerAuthOnly })
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

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, string usage, DateTimeOffset notBefore, DateTimeOffset notAfter, bool san = false)
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
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            req.CertificateExtensions.Add(names.Build());
        }

        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = req.Create(ca, notBefore, notAfter, serial);
        return issued.CopyWithPrivateKey(key);
    }
}
