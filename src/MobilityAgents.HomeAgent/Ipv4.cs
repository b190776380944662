using System.Net;

namespace MobilityAgents.HomeAgent;

/// <summary>
/// Strict IPv4 parsing for what laptops and operators type or send: exactly four decimal octets
/// ("192.0.2.77"). <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> also accepts inet_aton
/// forms ("1" = 0.0.0.1, "0x7f.1", "010.0.0.1" as octal), which would turn a typo into a valid
/// but wrong address.
/// </summary>
internal static class Ipv4
{
    public static bool TryParse(string? s, out IPAddress address)
    {
        address = IPAddress.None;
        if (string.IsNullOrEmpty(s) || s.Length > 15)
        {
            return false;
        }

        Span<byte> octets = stackalloc byte[4];
        int part = 0, value = 0, digits = 0;
        foreach (char c in s)
        {
            if (c == '.')
            {
                if (digits == 0 || part == 3)
                {
                    return false;
                }

                octets[part++] = (byte)value;
                value = 0;
                digits = 0;
            }
            else if (c is >= '0' and <= '9')
            {
                if (digits > 0 && value == 0)
                {
                    return false; // leading zero: octal in inet_aton, ambiguous here
                }

                value = (value * 10) + (c - '0');
                digits++;
                if (value > 255)
                {
                    return false;
                }
            }
            else
            {
                return false;
            }
        }

        if (part != 3 || digits == 0)
        {
            return false;
        }

        octets[3] = (byte)value;
        address = new IPAddress(octets);
        return true;
    }

    /// <summary>Parses "a.b.c.d/len" with zero host bits; <paramref name="problem"/> says what is wrong otherwise.</summary>
    public static bool TryParsePrefix(string? s, out IPNetwork prefix, out string problem)
    {
        prefix = default;
        problem = "is not an IPv4 prefix (e.g. 192.0.2.0/24)";
        int slash = s?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (s is null || slash < 0 || !TryParse(s[..slash], out IPAddress a) ||
            !int.TryParse(s.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int len) ||
            len is < 0 or > 32)
        {
            return false;
        }

        IPNetwork network = new(Network(a, len), len);
        if (!network.BaseAddress.Equals(a))
        {
            problem = $"has host bits set after /{len}: did you mean {network}?";
            return false;
        }

        prefix = network;
        return true;
    }

    /// <summary>The first address of the /<paramref name="len"/> containing <paramref name="a"/>.</summary>
    public static IPAddress Network(IPAddress a, int len)
    {
        uint v = ToUInt32(a);
        uint mask = len == 0 ? 0 : uint.MaxValue << (32 - len);
        return FromUInt32(v & mask);
    }

    /// <summary>The last (broadcast) address of a prefix.</summary>
    public static IPAddress Broadcast(IPNetwork n)
    {
        uint mask = n.PrefixLength == 0 ? 0 : uint.MaxValue << (32 - n.PrefixLength);
        return FromUInt32(ToUInt32(n.BaseAddress) | ~mask);
    }

    /// <summary>Why <paramref name="a"/> cannot be a unicast host address, or null if it can.</summary>
    public static string? NotUnicast(IPAddress a)
    {
        byte[] b = a.GetAddressBytes();
        return b.Length != 4 ? "not an IPv4 address"
            : b[0] == 0 ? "not a unicast address (0.0.0.0/8 is \"this network\")"
            : b[0] == 127 ? "a loopback address"
            : a.Equals(IPAddress.Broadcast) ? "not a unicast address (limited broadcast)"
            : b[0] >= 240 ? "not a unicast address (240.0.0.0/4 is reserved)"
            : b[0] >= 224 ? "not a unicast address (multicast)"
            : null;
    }

    private static uint ToUInt32(IPAddress a)
    {
        byte[] b = a.GetAddressBytes();
        return ((uint)b[0] << 24) | ((uint)b[1] << 16) | ((uint)b[2] << 8) | b[3];
    }

    private static IPAddress FromUInt32(uint v) => new([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
}
