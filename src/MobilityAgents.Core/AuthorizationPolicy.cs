using System.Collections.Frozen;
using System.Net;

namespace MobilityAgents.Core;

/// <summary>
/// Which home addresses each identity (client certificate subject) may claim. Immutable; built
/// from configuration. An address authorized for more than one identity is refused at load: a
/// laptop must never be able to take over another identity's address.
/// </summary>
public sealed class AuthorizationPolicy
{
    private readonly FrozenDictionary<string, IPAddress[]> _byIdentity;
    private readonly FrozenDictionary<IPAddress, string> _byAddress;

    public AuthorizationPolicy(IEnumerable<KeyValuePair<string, IReadOnlyList<IPAddress>>> grants)
    {
        ArgumentNullException.ThrowIfNull(grants);
        var byIdentity = new Dictionary<string, IPAddress[]>(StringComparer.Ordinal);
        var byAddress = new Dictionary<IPAddress, string>();
        foreach ((string identity, IReadOnlyList<IPAddress> addresses) in grants)
        {
            if (string.IsNullOrWhiteSpace(identity))
            {
                throw new ArgumentException("an authorization entry has an empty identity");
            }

            if (addresses.Count == 0)
            {
                throw new ArgumentException($"identity {identity} is authorized for no home address");
            }

            foreach (IPAddress a in addresses)
            {
                if (byAddress.TryGetValue(a, out string? other) && other != identity)
                {
                    throw new ArgumentException($"home address {a} is authorized for both {other} and {identity}; an address belongs to one identity");
                }

                byAddress[a] = identity;
            }

            byIdentity[identity] = [.. addresses];
        }

        _byIdentity = byIdentity.ToFrozenDictionary(StringComparer.Ordinal);
        _byAddress = byAddress.ToFrozenDictionary();
    }

    /// <summary>The addresses an identity may claim (empty if it is unknown).</summary>
    public IReadOnlyList<IPAddress> AddressesOf(string identity) =>
        _byIdentity.TryGetValue(identity, out IPAddress[]? a) ? a : [];

    /// <summary>The identity that owns an address, if any.</summary>
    public string? OwnerOf(IPAddress address) => _byAddress.GetValueOrDefault(address);

    public bool IsAuthorized(string identity, IPAddress address) => OwnerOf(address) == identity;
}
