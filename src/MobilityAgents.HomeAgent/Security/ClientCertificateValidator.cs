using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MobilityAgents.HomeAgent.Configuration;

namespace MobilityAgents.HomeAgent.Security;

/// <summary>
/// Decides, during the TLS handshake, whether a client certificate is acceptable: it must chain
/// to one of the configured client CAs (<see cref="X509ChainTrustMode.CustomRootTrust"/>: the
/// system's roots are never consulted), be valid now (time from <see cref="TimeProvider"/>), carry
/// the clientAuth extended key usage if it has any, and pass revocation checking only if
/// ClientCertificateRevocation asks for it. The chain SslStream built against the system store
/// (and its policy errors) is ignored, except for intermediates the client sent.
/// </summary>
public sealed class ClientCertificateValidator(TlsMaterial tls, HomeAgentOptions options, TimeProvider time, ILogger<ClientCertificateValidator> logger)
{
    /// <summary>The Kestrel/SslStream callback shape.</summary>
    public bool Validate(X509Certificate2 certificate, X509Chain? presented, SslPolicyErrors ignored)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string? problem = Check(certificate, presented);
        if (problem is not null)
        {
            Log.ClientCertificateRejected(logger, certificate.Subject, certificate.Issuer, problem);
        }

        return problem is null;
    }

    /// <summary>Why the certificate is not acceptable, or null if it is.</summary>
    public string? Check(X509Certificate2 certificate, X509Chain? presented = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        X509ChainPolicy policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(tls.ClientCas);
        policy.RevocationMode = options.ClientCertificateRevocation;
        policy.RevocationFlag = X509RevocationFlag.ExcludeRoot;
        policy.DisableCertificateDownloads = true;
        policy.ApplicationPolicy.Add(new Oid(TlsMaterial.ClientAuthOid));
        policy.VerificationTime = time.GetUtcNow().UtcDateTime;
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
        return $"does not chain to ClientCa: {string.Join("; ", why)}";
    }
}
