using System.Buffers.Binary;
using System.Security.Cryptography;

namespace MobilityAgents.Datapath;

/// <summary>
/// The control messages of ipip-in-UDP (36 bytes, big endian). A UDP payload that starts with
/// 0x00 can never be an IPv4 packet (whose first nibble is 4), so data and control share the port.
/// <code>
/// [0]       0x00 marker
/// [1]       version 1
/// [2]       type: 1 keepalive (laptop -> home agent), 2 ack (home agent -> laptop)
/// [3]       0
/// [4..12)   token (names the binding)
/// [12..20)  counter (strictly increasing per token: replay protection)
/// [20..36)  first 16 bytes of HMAC-SHA256(key, bytes [0..20))
/// </code>
/// </summary>
public static class KeepaliveMessage
{
    /// <summary>The length of every control message.</summary>
    public const int Length = 36;

    /// <summary>The version byte.</summary>
    public const byte Version = 1;

    /// <summary>Type byte of a keepalive (laptop to home agent).</summary>
    public const byte TypeKeepalive = 1;

    /// <summary>Type byte of an ack (home agent to laptop).</summary>
    public const byte TypeAck = 2;

    private const int SignedLength = 20;
    private const int MacLength = 16;

    /// <summary>Writes a signed message into <paramref name="destination"/> (at least 36 bytes).</summary>
    public static void Write(Span<byte> destination, byte type, ulong token, ulong counter, ReadOnlySpan<byte> key)
    {
        destination = destination[..Length];
        destination[0] = 0;
        destination[1] = Version;
        destination[2] = type;
        destination[3] = 0;
        BinaryPrimitives.WriteUInt64BigEndian(destination[4..], token);
        BinaryPrimitives.WriteUInt64BigEndian(destination[12..], counter);
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, destination[..SignedLength], mac);
        mac[..MacLength].CopyTo(destination[SignedLength..]);
    }

    /// <summary>Reads the header of a control message; false if the layout is not version 1 (no authentication yet).</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, out byte type, out ulong token, out ulong counter)
    {
        type = 0;
        token = counter = 0;
        if (message.Length != Length || message[0] != 0 || message[1] != Version || message[3] != 0)
        {
            return false;
        }

        type = message[2];
        token = BinaryPrimitives.ReadUInt64BigEndian(message[4..]);
        counter = BinaryPrimitives.ReadUInt64BigEndian(message[12..]);
        return true;
    }

    /// <summary>True if the message's HMAC is right for <paramref name="key"/> (constant-time compare).</summary>
    public static bool Verify(ReadOnlySpan<byte> message, ReadOnlySpan<byte> key)
    {
        if (message.Length != Length)
        {
            return false;
        }

        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, message[..SignedLength], mac);
        return CryptographicOperations.FixedTimeEquals(mac[..MacLength], message[SignedLength..Length]);
    }
}
