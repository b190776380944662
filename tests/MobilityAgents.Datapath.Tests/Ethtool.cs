using System.Runtime.InteropServices;
using System.Text;

namespace MobilityAgents.Datapath.Tests;

/// <summary>
/// <c>ethtool -K DEV tx off</c> through the SIOCETHTOOL ioctl (ethtool is not installed here).
/// Over veth, a locally generated TCP segment keeps a partial checksum (CHECKSUM_PARTIAL: the
/// "NIC" would finish it); a kernel ipip link then sends it inside the outer packet as is, and a
/// raw socket at the other end receives those unfinished bytes. A real wire never carries them.
/// </summary>
public static partial class Ethtool
{
    private const uint SIOCETHTOOL = 0x8946;
    private const uint ETHTOOL_STXCSUM = 0x17;

    public static unsafe void DisableTxChecksum(TestNamespace ns, string device) => ns.Namespace.Run(() =>
    {
        int fd = Socket(2, 2, 0);
        Assert.True(fd >= 0, "socket");
        try
        {
            uint* value = stackalloc uint[2] { ETHTOOL_STXCSUM, 0 };
            byte* ifr = stackalloc byte[40];
            new Span<byte>(ifr, 40).Clear();
            Encoding.ASCII.GetBytes(device, new Span<byte>(ifr, 15));
            *(nint*)(ifr + 16) = (nint)value;
            Assert.True(Ioctl(fd, SIOCETHTOOL, ifr) == 0, $"SIOCETHTOOL ETHTOOL_STXCSUM {device}: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            _ = Close(fd);
        }
    });

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
