using System.Runtime.Versioning;
using System.Text;
using Microsoft.Win32.SafeHandles;
using MobilityAgents.Netlink;
using Tmds.Linux;

namespace MobilityAgents.Rtnetlink;

/// <summary>
/// A TUN device (layer-3, no packet-info header): the file handle carries the device's packets.
/// Created in a given namespace (the device lives where /dev/net/tun was opened). The device goes
/// away when the handle is closed, unless it was made persistent.
/// Equivalent to: <c>ip tuntap add dev NAME mode tun</c> (for a persistent one).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class TunDevice : IDisposable
{
    // linux/if_tun.h
    private const int TUNSETIFF = 0x400454ca;
    private const int TUNSETPERSIST = 0x400454cb;
    private const short IFF_TUN = 0x0001;
    private const short IFF_NO_PI = 0x1000;
    private const short IFF_MULTI_QUEUE = 0x0100;
    private const int IFNAMSIZ = 16;

    private TunDevice(SafeFileHandle handle, string name)
    {
        Handle = handle;
        Name = name;
    }

    /// <summary>The open /dev/net/tun queue: read a packet, write a packet.</summary>
    public SafeFileHandle Handle { get; }

    /// <summary>The interface name the kernel gave (it fills in %d patterns).</summary>
    public string Name { get; }

    /// <summary>Creates (or attaches to a persistent) TUN device <paramref name="name"/> in <paramref name="netns"/>.</summary>
    public static TunDevice Create(string name, NetworkNamespace? netns = null, bool multiQueue = false)
    {
        LinkService.ValidateName(name);
        netns ??= NetworkNamespace.Current;
        return netns.Run(() => Open(name, multiQueue));
    }

    private static unsafe TunDevice Open(string name, bool multiQueue)
    {
        byte* path = stackalloc byte[] { (byte)'/', (byte)'d', (byte)'e', (byte)'v', (byte)'/', (byte)'n', (byte)'e', (byte)'t', (byte)'/', (byte)'t', (byte)'u', (byte)'n', 0 };
        int fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            throw new NetlinkSocketException("open /dev/net/tun", LibC.errno);
        }

        // struct ifreq { char ifr_name[IFNAMSIZ]; short ifr_flags; ... } (40 bytes on 64-bit)
        byte* ifr = stackalloc byte[40];
        new Span<byte>(ifr, 40).Clear();
        Encoding.ASCII.GetBytes(name, new Span<byte>(ifr, IFNAMSIZ - 1));
        *(short*)(ifr + IFNAMSIZ) = (short)(IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0));
        if (LibC.ioctl(fd, TUNSETIFF, (void*)ifr) < 0)
        {
            int errno = LibC.errno;
            LibC.close(fd);
            throw new NetlinkSocketException($"ioctl TUNSETIFF {name} (ip tuntap add dev {name} mode tun)", errno);
        }

        string actual = Encoding.ASCII.GetString(new ReadOnlySpan<byte>(ifr, IFNAMSIZ)).TrimEnd('\0');
        return new TunDevice(new SafeFileHandle(fd, ownsHandle: true), actual);
    }

    /// <summary>Keeps the device after the handle closes (or not). Equivalent to: <c>ip tuntap add</c> / <c>ip tuntap del</c>.</summary>
    public void SetPersistent(bool persistent)
    {
        if (LibC.ioctl((int)Handle.DangerousGetHandle(), TUNSETPERSIST, persistent ? 1 : 0) < 0)
        {
            throw new NetlinkSocketException($"ioctl TUNSETPERSIST {Name} {persistent}", LibC.errno);
        }
    }

    public void Dispose() => Handle.Dispose();
}
