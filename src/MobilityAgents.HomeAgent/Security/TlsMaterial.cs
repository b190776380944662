using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MobilityAgents.HomeAgent.Configuration;

namespace MobilityAgents.HomeAgent.Security;

/// <summary>
/// The certificates the home agent's TLS endpoint uses, loaded from the configured PEM files at
/// start (a missing or bad file fails startup with a message naming its key): its own certificate
/// with private key and any intermediates, and the client CA(s), the only trust anchors for
/// laptop and operator certificates.
/// </summary>
public sealed class TlsMaterial : IDisposable
{
    private TlsMaterial(X509Certificate2 server, X509Certificate2Collection chain, X509Certificate2Collection clientCas, IReadOnlyList<string> keyFilesReadableByOthers)
    {
        ServerCertificate = server;
        ServerChain = chain;
        ClientCas = clientCas;
        KeyFilesReadableByOthers = keyFilesReadableByOthers;
    }

    /// <summary>The server certificate, with its private key.</summary>
    public X509Certificate2 ServerCertificate { get; }

    /// <summary>Intermediates sent after the server certificate (the rest of the Certificate file).</summary>
    public X509Certificate2Collection ServerChain { get; }

    /// <summary>The trust anchors of client certificates (custom root trust: no system roots).</summary>
    public X509Certificate2Collection ClientCas { get; }

    /// <summary>Private key files other users can read (logged as a warning at start).</summary>
    public IReadOnlyList<string> KeyFilesReadableByOthers { get; }

    /// <summary>Loads and checks the files named by <paramref name="options"/>. Throws <see cref="HomeAgentConfigurationException"/>.</summary>
    public static TlsMaterial Load(HomeAgentOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        var errors = new List<string>();
        X509Certificate2? server = null;
        var chain = new X509Certificate2Collection();
        var cas = new X509Certificate2Collection();
        DateTime now = time.GetUtcNow().UtcDateTime;

        bool certOk = Readable("Certificate", options.Certificate, errors);
        bool keyOk = Readable("PrivateKey", options.PrivateKey, errors);
        if (certOk && keyOk)
        {
            try
            {
                server = X509Certificate2.CreateFromPemFile(options.Certificate, options.PrivateKey);
                chain.ImportFromPemFile(options.Certificate);
                chain.RemoveAt(0); // the server certificate itself; the rest are intermediates
            }
            catch (CryptographicException e)
            {
                errors.Add($"Certificate, PrivateKey: cannot load '{options.Certificate}' with the key in '{options.PrivateKey}': {e.Message.TrimEnd('.')} (both PEM; does the key belong to the certificate?)");
            }
            catch (ArgumentException e)
            {
                errors.Add($"Certificate, PrivateKey: cannot load '{options.Certificate}' with the key in '{options.PrivateKey}': {e.Message.TrimEnd('.')}");
            }
        }

        if (server is not null)
        {
            if (server.NotAfter.ToUniversalTime() <= now)
            {
                errors.Add($"Certificate: '{options.Certificate}' ({server.Subject}) expired on {server.NotAfter.ToUniversalTime():u}");
            }
            else if (server.NotBefore.ToUniversalTime() > now)
            {
                errors.Add($"Certificate: '{options.Certificate}' ({server.Subject}) is not valid before {server.NotBefore.ToUniversalTime():u}");
            }

            if (server.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } eku &&
                !eku.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == ServerAuthOid))
            {
                errors.Add($"Certificate: '{options.Certificate}' ({server.Subject}) is not a TLS server certificate: its extendedKeyUsage lacks serverAuth");
            }
        }

        if (Readable("ClientCa", options.ClientCa, errors))
        {
            try
            {
                cas.ImportFromPemFile(options.ClientCa);
            }
            catch (CryptographicException e)
            {
                errors.Add($"ClientCa: cannot read '{options.ClientCa}': {e.Message.TrimEnd('.')}");
            }

            if (cas.Count == 0 && errors.Count == 0)
            {
                errors.Add($"ClientCa: '{options.ClientCa}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            }

            foreach (X509Certificate2 ca in cas)
            {
                if (ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
                {
                    errors.Add($"ClientCa: '{ca.Subject}' in '{options.ClientCa}' is not a CA certificate (basicConstraints CA:TRUE)");
                }
                else if (ca.NotAfter.ToUniversalTime() <= now)
                {
                    errors.Add($"ClientCa: '{ca.Subject}' in '{options.ClientCa}' expired on {ca.NotAfter.ToUniversalTime():u}");
                }
            }
        }

        if (errors.Count > 0)
        {
            server?.Dispose();
            DisposeAll(chain);
            DisposeAll(cas);
            throw new HomeAgentConfigurationException(errors);
        }

        List<string> exposed = OperatingSystem.IsWindows() ||
            (File.GetUnixFileMode(options.PrivateKey) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) == 0
            ? [] : [options.PrivateKey];
        return new TlsMaterial(server!, chain, cas, exposed);
    }

    /// <summary>id-kp-serverAuth.</summary>
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    /// <summary>id-kp-clientAuth.</summary>
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    public void Dispose()
    {
        ServerCertificate.Dispose();
        DisposeAll(ServerChain);
        DisposeAll(ClientCas);
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
