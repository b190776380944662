using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MobilityAgents.MobileAgent.Configuration;

/// <summary>
/// The mobile agent's side of mutual TLS, loaded from the configured PEM files at start (a missing
/// or bad file fails startup with a message naming its key): its client certificate with private
/// key and intermediates, and the CA(s) the home agent's certificate must chain to. The system's
/// roots are never trusted (<see cref="X509ChainTrustMode.CustomRootTrust"/>).
/// </summary>
public sealed class ClientTls : IDisposable
{
    /// <summary>id-kp-serverAuth.</summary>
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    /// <summary>id-kp-clientAuth.</summary>
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    private readonly TimeProvider _time;

    private ClientTls(X509Certificate2 client, X509Certificate2Collection chain, X509Certificate2Collection cas, bool keyReadableByOthers, TimeProvider time)
    {
        ClientCertificate = client;
        ClientChain = chain;
        Cas = cas;
        KeyReadableByOthers = keyReadableByOthers;
        _time = time;
        Context = SslStreamCertificateContext.Create(client, chain, offline: true);
    }

    /// <summary>The client certificate, with its private key.</summary>
    public X509Certificate2 ClientCertificate { get; }

    /// <summary>Intermediates sent after the client certificate (the rest of the Certificate file).</summary>
    public X509Certificate2Collection ClientChain { get; }

    /// <summary>The only trust anchors for the home agent's certificate.</summary>
    public X509Certificate2Collection Cas { get; }

    /// <summary>The identity the home agent will see: the client certificate's subject CN.</summary>
    public string Identity => ClientCertificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);

    /// <summary>True if other users may read the private key file (logged as a warning at start).</summary>
    public bool KeyReadableByOthers { get; }

    /// <summary>What SslStream sends: the certificate and its intermediates.</summary>
    public SslStreamCertificateContext Context { get; }

    /// <summary>Loads and checks the files named by <paramref name="options"/>. Throws <see cref="MobileAgentConfigurationException"/>.</summary>
    public static ClientTls Load(MobileAgentOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        var errors = new List<string>();
        X509Certificate2? client = null;
        var chain = new X509Certificate2Collection();
        var cas = new X509Certificate2Collection();
        DateTime now = time.GetUtcNow().UtcDateTime;

        bool certOk = Readable("Certificate", options.Certificate, errors);
        bool keyOk = Readable("PrivateKey", options.PrivateKey, errors);
        if (certOk && keyOk)
        {
            try
            {
                client = X509Certificate2.CreateFromPemFile(options.Certificate, options.PrivateKey);
                chain.ImportFromPemFile(options.Certificate);
                chain.RemoveAt(0); // the client certificate itself; the rest are intermediates
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                errors.Add($"Certificate, PrivateKey: cannot load '{options.Certificate}' with the key in '{options.PrivateKey}': {e.Message.TrimEnd('.')} (both PEM; does the key belong to the certificate?)");
            }
        }

        if (client is not null)
        {
            if (client.NotAfter.ToUniversalTime() <= now)
            {
                errors.Add($"Certificate: '{options.Certificate}' ({client.Subject}) expired on {client.NotAfter.ToUniversalTime():u}");
            }
            else if (client.NotBefore.ToUniversalTime() > now)
            {
                errors.Add($"Certificate: '{options.Certificate}' ({client.Subject}) is not valid before {client.NotBefore.ToUniversalTime():u}");
            }

            if (client.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } eku &&
                !eku.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == ClientAuthOid))
            {
                errors.Add($"Certificate: '{options.Certificate}' ({client.Subject}) is not a TLS client certificate: its extendedKeyUsage lacks clientAuth");
            }

            if (string.IsNullOrEmpty(client.GetNameInfo(X509NameType.SimpleName, forIssuer: false)))
            {
                errors.Add($"Certificate: '{options.Certificate}' ({client.Subject}) has no subject CN: the home agent takes the identity from it");
            }
        }

        if (Readable("Ca", options.Ca, errors))
        {
            try
            {
                cas.ImportFromPemFile(options.Ca);
                if (cas.Count == 0)
                {
                    errors.Add($"Ca: '{options.Ca}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
                }
            }
            catch (CryptographicException e)
            {
                errors.Add($"Ca: cannot read '{options.Ca}': {e.Message.TrimEnd('.')}");
            }

            foreach (X509Certificate2 ca in cas)
            {
                if (ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
                {
                    errors.Add($"Ca: '{ca.Subject}' in '{options.Ca}' is not a CA certificate (basicConstraints CA:TRUE)");
                }
                else if (ca.NotAfter.ToUniversalTime() <= now)
                {
                    errors.Add($"Ca: '{ca.Subject}' in '{options.Ca}' expired on {ca.NotAfter.ToUniversalTime():u}");
                }
            }
        }

        if (errors.Count > 0)
        {
            client?.Dispose();
            DisposeAll(chain);
            DisposeAll(cas);
            throw new MobileAgentConfigurationException(errors);
        }

        bool exposed = (File.GetUnixFileMode(options.PrivateKey) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0;
        return new ClientTls(client!, chain, cas, exposed, time);
    }

    /// <summary>
    /// The TLS client options of one connection to <paramref name="targetHost"/>: TLS 1.3, this
    /// laptop's certificate, and the home agent's certificate checked against <see cref="Cas"/> only;
    /// <paramref name="onRejected"/> hears why a certificate was refused.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions(string targetHost, Action<string>? onRejected = null) => new()
    {
        TargetHost = targetHost,
        EnabledSslProtocols = SslProtocols.Tls13,
        ClientCertificateContext = Context,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, presented, errors) =>
        {
            if (certificate is null)
            {
                onRejected?.Invoke("the home agent sent no certificate");
                return false;
            }

            X509Certificate2? owned = certificate is X509Certificate2 ? null : new X509Certificate2(certificate);
            try
            {
                string? problem = CheckServer(owned ?? (X509Certificate2)certificate, presented, errors);
                if (problem is not null)
                {
                    onRejected?.Invoke(problem);
                }

                return problem is null;
            }
            finally
            {
                owned?.Dispose();
            }
        },
    };

    /// <summary>
    /// Why the home agent's certificate is not acceptable, or null if it is: its name must match
    /// the endpoint (SslStream's own check), and it must chain to <see cref="Cas"/> with the
    /// serverAuth usage, valid now.
    /// </summary>
    public string? CheckServer(X509Certificate2 certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if ((errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return $"the home agent's certificate ({certificate.Subject}) does not name the endpoint (subjectAltName)";
        }

        using var chain = new X509Chain();
        X509ChainPolicy policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(Cas);
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        policy.ApplicationPolicy.Add(new Oid(ServerAuthOid));
        policy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        policy.VerificationTimeIgnored = false;
        if (presented is not null)
        {
            foreach (X509ChainElement e in presented.ChainElements)
            {
                if (!e.Certificate.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
                {
                    policy.ExtraStore.Add(e.Certificate);
                }
            }
        }

        if (chain.Build(certificate))
        {
            return null;
        }

        IEnumerable<string> why = chain.ChainStatus
            .Select(s => string.IsNullOrWhiteSpace(s.StatusInformation) ? s.Status.ToString() : s.StatusInformation.Trim())
            .Distinct(StringComparer.Ordinal);
        return $"the home agent's certificate ({certificate.Subject}) does not chain to Ca: {string.Join("; ", why)}";
    }

    public void Dispose()
    {
        ClientCertificate.Dispose();
        DisposeAll(ClientChain);
        DisposeAll(Cas);
    }

    private static bool Readable(string key, string path, List<string> errors)
    {
        if (!File.Exists(path))
        {
            errors.Add($"{key}: '{path}' does not exist");
            return false;
        }

        try
        {
            using FileStream _ = File.OpenRead(path);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            errors.Add($"{key}: '{path}' is not readable by this user");
        }
        catch (IOException e)
        {
            errors.Add($"{key}: cannot read '{path}': {e.Message}");
        }

        return false;
    }

    private static void DisposeAll(X509Certificate2Collection c)
    {
        foreach (X509Certificate2 x in c)
        {
            x.Dispose();
        }
    }
}
