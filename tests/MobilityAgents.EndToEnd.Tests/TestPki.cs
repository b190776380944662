using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MobilityAgents.EndToEnd.Tests;

/// <summary>
/// Throwaway certificates for one scenario, made with CertificateRequest and written as PEM (what
/// both daemons read) into <see cref="Directory"/>: a CA, the home agent's server certificate
/// (SAN IP = the gateway's outer address, the laptops' endpoint), and client certificates
/// CN=alice and CN=bob. The same construction as tests/MobilityAgents.HomeAgent.Tests/TestPki.cs
/// (copied, not referenced: test projects do not depend on each other).
/// </summary>
public sealed class TestPki : IDisposable
{
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";

    public TestPki(IPAddress serverAddress)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("ma-e2e-").FullName;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 ca = MakeCa("CN=MobilityAgents E2E Test CA", now);
        using X509Certificate2 server = Issue(ca, "CN=home-agent", ServerAuth, now, serverAddress);
        using X509Certificate2 alice = Issue(ca, "CN=alice", ClientAuth, now, null);
        using X509Certificate2 bob = Issue(ca, "CN=bob", ClientAuth, now, null);

        CaPem = Write("ca.pem", ca.ExportCertificatePem());
        ServerPem = Write("home-agent.pem", server.ExportCertificatePem());
        ServerKey = Write("home-agent.key", server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        AlicePem = Write("alice.pem", alice.ExportCertificatePem());
        AliceKey = Write("alice.key", alice.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        BobPem = Write("bob.pem", bob.ExportCertificatePem());
        BobKey = Write("bob.key", bob.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    public string Directory { get; }

    public string CaPem { get; }

    public string ServerPem { get; }

    public string ServerKey { get; }

    public string AlicePem { get; }

    public string AliceKey { get; }

    public string BobPem { get; }

    public string BobKey { get; }

    /// <summary>Writes <paramref name="content"/> to <paramref name="name"/> in <see cref="Directory"/>, mode 0600.</summary>
    public string Write(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    public void Dispose()
    {
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

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, string usage, DateTimeOffset now, IPAddress? san)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (san is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(san);
            req.CertificateExtensions.Add(names.Build());
        }

        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = req.Create(ca, now.AddHours(-1), now.AddDays(2), serial);
        return issued.CopyWithPrivateKey(key);
    }
}
