using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MobilityAgents.Bench.Registration;

/// <summary>
/// Throwaway certificates, made in-process with <see cref="CertificateRequest"/> (as
/// tests/MobilityAgents.HomeAgent.Tests/TestPki.cs does): a CA, the home agent's server certificate
/// (subjectAltName = the outer address), and one client certificate per identity (CN = identity).
/// Every key is ECDSA P-256, as certs/make-certs.sh makes them; a P-256 key pair and a signature
/// take well under a millisecond natively, so 1,000 identities take about a second.
/// The CA and the server's files go to <see cref="Directory"/> as PEM (what the daemons read).
/// </summary>
internal sealed class Pki : IDisposable
{
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private readonly ECDsa _caKey;
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    public Pki(string directory, IPAddress serverAddress)
    {
        Directory = directory;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=MobilityAgents Bench CA", _caKey, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        Ca = req.CreateSelfSigned(_now.AddDays(-1), _now.AddDays(7));

        using X509Certificate2 server = Issue("home-agent", ServerAuth, serverAddress);
        CaPem = Write("ca.pem", Ca.ExportCertificatePem());
        ServerPem = Write("home-agent.pem", server.ExportCertificatePem());
        ServerKey = Write("home-agent.key", server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public string CaPem { get; }

    public string ServerPem { get; }

    public string ServerKey { get; }

    /// <summary>A client certificate with its private key: CN = <paramref name="identity"/>, clientAuth.</summary>
    public X509Certificate2 Client(string identity) => Issue(identity, ClientAuth, null);

    /// <summary>
    /// What SslStream sends for <paramref name="certificate"/>, built once (as the mobile agent does
    /// at start, MobileAgent/Configuration/ClientTls.cs): the leaf alone, the CA is the server's.
    /// </summary>
    public static SslStreamCertificateContext Context(X509Certificate2 certificate) =>
        SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);

    /// <summary>Writes a client's certificate and key as PEM files (for the mobile agent daemon); returns their paths.</summary>
    public (string Certificate, string Key) WriteClient(X509Certificate2 certificate, string name) =>
        (Write(name + ".pem", certificate.ExportCertificatePem()), Write(name + ".key", certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()));

    /// <summary>The server check every client makes: a chain to our CA alone (custom root trust), the name checked by SslStream.</summary>
    public bool ValidateServer(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var cert = new X509Certificate2(certificate);
        return chain.Build(cert);
    }

    public string Write(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    private X509Certificate2 Issue(string commonName, string usage, IPAddress? san)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=" + commonName, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, true, false));
        if (san is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(san);
            req.CertificateExtensions.Add(names.Build());
        }

        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = req.Create(Ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_caKey), _now.AddHours(-1), _now.AddDays(7), serial);
        return issued.CopyWithPrivateKey(key);
    }

    public void Dispose()
    {
        Ca.Dispose();
        _caKey.Dispose();
    }
}
