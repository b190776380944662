using System.Net;
using System.Net.NetworkInformation;

namespace MobilityAgents.Reconciler.Tests;

/// <summary>The gratuitous ARP frames, field by field as RFC 826 / RFC 5227 lay them out (written by hand, not by the encoder).</summary>
public class GratuitousArpTests
{
    private static readonly PhysicalAddress Mac = PhysicalAddress.Parse("02-00-5E-00-53-01");
    private static readonly IPAddress Home = IPAddress.Parse("192.0.2.10");

    [Fact]
    public void Announcement_is_a_broadcast_request_from_and_for_the_home_address_with_a_zero_target_mac()
    {
        byte[] expected =
        [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
            0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // Ethernet source: the LAN interface's MAC
            0x08, 0x06,                         // EtherType: ARP
            0x00, 0x01,                         // hardware type: Ethernet
            0x08, 0x00,                         // protocol type: IPv4
            0x06,                               // hardware address length
            0x04,                               // protocol address length
            0x00, 0x01,                         // operation: request (RFC 5227 announcement)
            0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // sender MAC: ours
            0xc0, 0x00, 0x02, 0x0a,             // sender IP: the home address
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC: zero
            0xc0, 0x00, 0x02, 0x0a,             // target IP: the home address again
        ];
        Assert.Equal(expected, GratuitousArp.BuildFrame(Mac, Home, 1));
    }

    [Fact]
    public void Gratuitous_reply_repeats_the_sender_mac_as_target_which_linux_requires_of_a_garp_reply()
    {
        byte[] expected =
        [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
            0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // Ethernet source
            0x08, 0x06,                         // EtherType: ARP
            0x00, 0x01,                         // hardware type: Ethernet
            0x08, 0x00,                         // protocol type: IPv4
            0x06,                               // hardware address length
            0x04,                               // protocol address length
            0x00, 0x02,                         // operation: reply
            0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // sender MAC
            0xc0, 0x00, 0x02, 0x0a,             // sender IP
            0x02, 0x00, 0x5e, 0x00, 0x53, 0x01, // target MAC = sender MAC (arp_is_garp)
            0xc0, 0x00, 0x02, 0x0a,             // target IP = sender IP
        ];
        Assert.Equal(expected, GratuitousArp.BuildFrame(Mac, Home, 2));
    }

    [Fact]
    public void Non_ethernet_or_non_ipv4_addresses_are_refused()
    {
        Assert.Throws<ArgumentException>(() => GratuitousArp.BuildFrame(PhysicalAddress.Parse("00-11-22-33"), Home, 1));
        Assert.Throws<ArgumentException>(() => GratuitousArp.BuildFrame(Mac, IPAddress.IPv6Loopback, 1));
    }
}
