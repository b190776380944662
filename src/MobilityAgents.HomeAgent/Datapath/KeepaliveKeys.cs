using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MobilityAgents.HomeAgent.Datapath;

/// <summary>
/// The keepalive credentials of UDP-encapsulated bindings (laptops behind NAT): a token that names
/// the binding in a keepalive and a 32-byte key that authenticates it, both derived from the
/// binding id with a secret made at start (HMAC-SHA256 as a PRF). The registration hands them to
/// the laptop over TLS; the userspace datapath learns a laptop's NAT-mapped address and port only
/// from keepalives that verify under them. Stable for a binding's life (moves and refreshes keep
/// its id), so the laptop's counter keeps replay protection across moves; a new binding, or a
/// home-agent restart, gives new ones.
/// </summary>
public sealed class KeepaliveKeys
{
    private readonly byte[] _secret = RandomNumberGenerator.GetBytes(32);

    /// <summary>The token of <paramref name="bindingId"/>'s keepalives.</summary>
    public ulong TokenOf(string bindingId) => BinaryPrimitives.ReadUInt64BigEndian(Derive("token:", bindingId));

    /// <summary>The 32-byte key of <paramref name="bindingId"/>'s keepalives.</summary>
    public byte[] KeyOf(string bindingId) => Derive("key:", bindingId);

    private byte[] Derive(string label, string bindingId)
    {
        ArgumentNullException.ThrowIfNull(bindingId);
        return HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes(label + bindingId));
    }
}
