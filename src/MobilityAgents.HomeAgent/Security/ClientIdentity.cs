using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using MobilityAgents.HomeAgent.Services;

namespace MobilityAgents.HomeAgent.Security;

/// <summary>
/// A caller's identity is the subject common name (CN, OID 2.5.4.3) of the client certificate
/// it presented in the TLS handshake (validated by <see cref="ClientCertificateValidator"/>):
/// "CN=alice, O=Example" is identity "alice". Exactly one CN, 1..64 characters, no control
/// characters. Nothing in a request can claim an identity.
/// </summary>
/// <remarks>
/// The CN rather than a SAN URI: it is what `openssl req -subj "/CN=alice"` writes and what
/// people read in `openssl x509 -subject`, and it can be a configuration key as-is
/// (Authorizations:alice), which a URI with ':' could not.
/// </remarks>
public static class ClientIdentity
{
    private const string CommonNameOid = "2.5.4.3";

    /// <summary>The identity of <paramref name="certificate"/>, or null with the <paramref name="problem"/>.</summary>
    public static string? Of(X509Certificate2 certificate, out string problem)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string? cn = null;
        int count = 0;
        foreach (X500RelativeDistinguishedName rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.HasMultipleElements)
            {
                continue;
            }

            if (rdn.GetSingleElementType().Value == CommonNameOid)
            {
                cn = rdn.GetSingleElementValue();
                count++;
            }
        }

        problem = count == 0 ? $"client certificate '{certificate.Subject}' has no subject CN: its CN is the identity (see certs/README.md)"
            : count > 1 ? $"client certificate '{certificate.Subject}' has {count} subject CNs: exactly one is the identity"
            : string.IsNullOrWhiteSpace(cn) || cn.Length > 64 || cn.Any(char.IsControl) ? $"client certificate '{certificate.Subject}' has an unusable CN (1..64 printable characters)"
            : "";
        return problem.Length == 0 ? cn : null;
    }

    /// <summary>The caller's identity; throws Unauthenticated if the connection carries none.</summary>
    public static string Require(ServerCallContext context, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(context);
        X509Certificate2? certificate = context.GetHttpContext().Connection.ClientCertificate;
        string problem = "no client certificate: the laptop must present its certificate (see certs/README.md)";
        string? identity = certificate is null ? null : Of(certificate, out problem);
        if (identity is null)
        {
            Log.Unauthenticated(logger, context.Method, context.Peer, problem);
            throw Refusals.Unauthenticated(problem);
        }

        return identity;
    }
}
