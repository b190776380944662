using System.Buffers.Binary;
using System.ComponentModel;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;
using Tmds.Linux;

namespace MobilityAgents.Reconciler;

/// <summary>
/// Gratuitous ARP on the home LAN: when a binding starts, the home agent tells the LAN that the home
/// address is now at its own MAC, so hosts that still cache the laptop's MAC (it was at home a moment
/// ago) switch at once instead of after their entry times out. Two frames, both broadcast, both
/// with sender = target = the home address (what Linux's arp_is_garp() accepts as gratuitous and
/// lets override a cached entry): an RFC 5227 ARP Announcement (a request, target MAC zero) and a
/// gratuitous reply (target MAC = sender MAC), for stacks that only learn from replies.
/// Sent through an AF_PACKET socket opened inside the namespace; needs CAP_NET_RAW.
/// </summary>
[SupportedOSPlatform("linux")]
public static class GratuitousArp
{
    // linux/if_ether.h, linux/if_arp.h, linux/socket.h.
    private const ushort ETH_P_ARP = 0x0806;
    private const ushort ETH_P_IP = 0x0800;
    private const ushort ARPHRD_ETHER = 1;
    private const ushort ARPOP_REQUEST = 1;
    private const ushort ARPOP_REPLY = 2;
    private const int AF_PACKET = 17;

    /// <summary>sizeof(struct ethhdr) + sizeof(struct arphdr) + 2 * (6 + 4).</summary>
    internal const int FrameLength = 14 + 8 + 20;

    /// <summary>sizeof(struct sockaddr_ll).</summary>
    private const int SizeofSockaddrLl = 20;

    /// <summary>
    /// Broadcasts the announcement and the gratuitous reply on interface <paramref name="interfaceIndex"/> of
    /// <paramref name="netns"/>. Equivalent to: <c>arping -U -c 1 -I IF ADDR; arping -A -c 1 -I IF ADDR</c>.
    /// </summary>
    public static void Announce(NetworkNamespace netns, int interfaceIndex, PhysicalAddress mac, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(netns);
        byte[] announcement = BuildFrame(mac, address, ARPOP_REQUEST);
        byte[] reply = BuildFrame(mac, address, ARPOP_REPLY);
        string what = $"arping -U -A -c 1 -I (ifindex {interfaceIndex}) {address} in network namespace {netns.Name}";
        // The socket is created inside the namespace (an AF_PACKET socket sends on the devices of the
        // namespace it was created in); it is used and closed on the same thread.
        netns.Run(() =>
        {
            int fd = LibC.socket(AF_PACKET, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, 0); // protocol 0: send only, receive nothing
            if (fd < 0)
            {
                throw Failure($"socket(AF_PACKET, SOCK_RAW) for {what}", LibC.errno);
            }

            try
            {
                Send(fd, interfaceIndex, announcement, what);
                Send(fd, interfaceIndex, reply, what);
            }
            finally
            {
                LibC.close(fd);
            }
        });
    }

    /// <summary>One Ethernet frame carrying an ARP packet for <paramref name="address"/> at <paramref name="mac"/> (RFC 826 layout).</summary>
    internal static byte[] BuildFrame(PhysicalAddress mac, IPAddress address, ushort operation)
    {
        ArgumentNullException.ThrowIfNull(mac);
        ArgumentNullException.ThrowIfNull(address);
        byte[] hw = mac.GetAddressBytes();
        if (hw.Length != 6)
        {
            throw new ArgumentException($"MAC address {mac} is not a 6-byte Ethernet address", nameof(mac));
        }

        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        }

        byte[] ip = address.GetAddressBytes();
        var f = new byte[FrameLength];
        Span<byte> s = f;
        s[..6].Fill(0xff);                                        // ethhdr.h_dest: broadcast
        hw.CopyTo(s[6..]);                                        // ethhdr.h_source
        BinaryPrimitives.WriteUInt16BigEndian(s[12..], ETH_P_ARP); // ethhdr.h_proto
        BinaryPrimitives.WriteUInt16BigEndian(s[14..], ARPHRD_ETHER); // arphdr.ar_hrd
        BinaryPrimitives.WriteUInt16BigEndian(s[16..], ETH_P_IP);  // arphdr.ar_pro
        s[18] = 6;                                                // arphdr.ar_hln
        s[19] = 4;                                                // arphdr.ar_pln
        BinaryPrimitives.WriteUInt16BigEndian(s[20..], operation); // arphdr.ar_op
        hw.CopyTo(s[22..]);                                       // ar_sha
        ip.CopyTo(s[28..]);                                       // ar_sip
        if (operation == ARPOP_REPLY)
        {
            hw.CopyTo(s[32..]);                                   // ar_tha = ar_sha: a gratuitous reply
        }                                                         // else ar_tha zero: an RFC 5227 announcement

        ip.CopyTo(s[38..]);                                       // ar_tip = ar_sip
        return f;
    }

    private static unsafe void Send(int fd, int interfaceIndex, byte[] frame, string what)
    {
        byte* sa = stackalloc byte[SizeofSockaddrLl];
        var sll = new Span<byte>(sa, SizeofSockaddrLl);
        sll.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(sll, AF_PACKET);        // sll_family (host order)
        BinaryPrimitives.WriteUInt16BigEndian(sll[2..], ETH_P_ARP);      // sll_protocol (network order)
        BinaryPrimitives.WriteInt32LittleEndian(sll[4..], interfaceIndex); // sll_ifindex
        sll[11] = 6;                                                     // sll_halen
        sll.Slice(12, 6).Fill(0xff);                                     // sll_addr: broadcast
        fixed (byte* p = frame)
        {
            while (true)
            {
                long n = LibC.sendto(fd, p, frame.Length, 0, (sockaddr*)sa, SizeofSockaddrLl);
                if (n == frame.Length)
                {
                    return;
                }

                int errno = n < 0 ? LibC.errno : Errno.EMSGSIZE;
                if (errno != Errno.EINTR)
                {
                    throw Failure($"sendto(AF_PACKET) for {what}", errno);
                }
            }
        }
    }

    private static IOException Failure(string operation, int errno) =>
        new($"{operation}: {Errno.Name(errno)} ({new Win32Exception(errno).Message})");
}
