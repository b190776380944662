using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using MobilityAgents.Netlink;

namespace MobilityAgents.Reconciler;

/// <summary>
/// nftables through libnftables' JSON API (libnftables.so.1, Debian package libnftables1), in one
/// network namespace. The product never runs the <c>nft</c> program. Every call makes a fresh
/// context inside <see cref="NetworkNamespace.Run{T}"/>: the context's netlink socket is opened in
/// the calling thread's namespace, and a context per call never answers from a stale cache.
/// A batch of commands is one nftables transaction: all of it is applied, or none.
/// <para>
/// libnftables 1.0.x waits for the kernel's answer to a batch with select(2) on its netlink
/// socket, and glibc aborts the whole process ("bit out of range 0 - FD_SETSIZE on fd_set") when
/// that descriptor is 1024 or more: a daemon with many descriptors open would die in the middle of
/// an Apply. So calls are serialised, a descriptor below 1024 is kept in reserve
/// (<see cref="ReserveDescriptor"/>, taken at start-up) and freed just before the context opens its
/// socket, which takes the lowest free number; and the socket's number is checked before the batch
/// runs: a call that would abort the process is refused with an <see cref="NftablesException"/>.
/// </para>
/// </summary>
[SupportedOSPlatform("linux")]
public static partial class Nftables
{
    /// <summary>The soname we bind to.</summary>
    public const string Library = "libnftables.so.1";

    /// <summary>libmnl, which libnftables uses for its socket (struct mnl_socket).</summary>
    private const string MnlLibrary = "libmnl.so.0";

    /// <summary>#define FD_SETSIZE 1024 (sys/select.h): select(2) cannot watch a descriptor at or above it.</summary>
    private const int FD_SETSIZE = 1024;

    private const int SOL_SOCKET = 1;
    private const int SO_PROTOCOL = 38;
    private const int SO_DOMAIN = 39;
    private const int AF_NETLINK = 16;
    private const int NETLINK_NETFILTER = 12;

    private static readonly Lock Gate = new();
    private static int s_reserved = -1;

    /// <summary>
    /// Keeps one descriptor below 1024 in reserve for libnftables' socket. Call it at start-up,
    /// while the process has few descriptors open (the mobile agent's reconciler does, when it is
    /// made); later calls keep the one already reserved.
    /// </summary>
    public static void ReserveDescriptor()
    {
        lock (Gate)
        {
            Reserve();
        }
    }

    /// <summary>
    /// Runs a JSON command batch (<c>{"nftables": [...]}</c>) and returns nft's JSON output (empty
    /// for commands that print nothing). <paramref name="describe"/> is the batch in nft syntax,
    /// for the exception when nft refuses it. Equivalent to: <c>nft -j -f FILE</c>.
    /// </summary>
    /// <exception cref="NftablesException">nft refused the batch, or libnftables cannot be loaded.</exception>
    public static string Run(NetworkNamespace netns, string json, string describe)
    {
        ArgumentNullException.ThrowIfNull(netns);
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(describe);
        return netns.Run(() => RunHere(json, describe));
    }

    private static string RunHere(string json, string describe)
    {
        lock (Gate)
        {
            // The reserved number is now the lowest free one: the context's socket takes it.
            Release();
            try
            {
                return RunLocked(json, describe);
            }
            finally
            {
                Reserve();
            }
        }
    }

    private static string RunLocked(string json, string describe)
    {
        IntPtr ctx;
        try
        {
            ctx = NativeMethods.nft_ctx_new(NativeMethods.NFT_CTX_DEFAULT);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new NftablesException(describe, $"{Library} cannot be loaded ({e.Message}); install libnftables1", unavailable: true, e);
        }

        if (ctx == IntPtr.Zero)
        {
            throw new NftablesException(describe, "nft_ctx_new failed");
        }

        try
        {
            int fd = SocketOf(ctx);
            if (fd >= FD_SETSIZE)
            {
                throw new NftablesException(describe,
                    $"libnftables' netlink socket is file descriptor {fd}, at or above FD_SETSIZE ({FD_SETSIZE}): libnftables would select(2) on it and glibc would abort the process; refused (too many descriptors open)");
            }

            // JSON output also makes nft_run_cmd_from_buffer parse its input as JSON (libnftables 1.0.6
            // has no separate input flag); both buffers are captured instead of going to stdout/stderr.
            NativeMethods.nft_ctx_output_set_flags(ctx, NativeMethods.NFT_CTX_OUTPUT_JSON);
            if (NativeMethods.nft_ctx_buffer_output(ctx) != 0 || NativeMethods.nft_ctx_buffer_error(ctx) != 0)
            {
                throw new NftablesException(describe, "nft_ctx_buffer_output/nft_ctx_buffer_error failed");
            }

            int rc = NativeMethods.nft_run_cmd_from_buffer(ctx, json);
            string output = Marshal.PtrToStringUTF8(NativeMethods.nft_ctx_get_output_buffer(ctx)) ?? "";
            if (rc != 0)
            {
                string error = (Marshal.PtrToStringUTF8(NativeMethods.nft_ctx_get_error_buffer(ctx)) ?? "").Trim();
                throw new NftablesException(describe, error.Length > 0 ? error : $"nft_run_cmd_from_buffer returned {rc}");
            }

            return output;
        }
        finally
        {
            NativeMethods.nft_ctx_free(ctx);
        }
    }

    /// <summary>Gives the reserved descriptor back (tests: to see a refusal instead of an abort).</summary>
    internal static void DropReservedDescriptor()
    {
        lock (Gate)
        {
            Release();
        }
    }

    /// <summary>
    /// The descriptor of the context's socket: struct nft_ctx's first member is
    /// <c>struct mnl_socket *nf_sock</c> (every libnftables from 0.9 to 1.1), read with libmnl's
    /// mnl_socket_get_fd and accepted only if it is a NETLINK_NETFILTER socket. When that cannot be
    /// confirmed, the lowest free descriptor stands in for it (the socket was opened just before).
    /// </summary>
    private static unsafe int SocketOf(IntPtr ctx)
    {
        IntPtr sock = Marshal.ReadIntPtr(ctx);
        if (sock != IntPtr.Zero)
        {
            try
            {
                int fd = NativeMethods.mnl_socket_get_fd(sock);
                int domain = 0, protocol = 0;
                Tmds.Linux.socklen_t len = sizeof(int);
                if (fd >= 0 &&
                    Tmds.Linux.LibC.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_NETLINK &&
                    Tmds.Linux.LibC.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == NETLINK_NETFILTER)
                {
                    return fd;
                }
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
            }
        }

        int probe = OpenDevNull();
        if (probe >= 0)
        {
            Tmds.Linux.LibC.close(probe);
        }

        return probe;
    }

    /// <summary>Takes the lowest free descriptor into reserve, if it is below FD_SETSIZE and none is reserved.</summary>
    private static void Reserve()
    {
        if (s_reserved >= 0)
        {
            return;
        }

        int fd = OpenDevNull();
        if (fd >= FD_SETSIZE)
        {
            Tmds.Linux.LibC.close(fd);
        }
        else if (fd >= 0)
        {
            s_reserved = fd;
        }
    }

    private static void Release()
    {
        if (s_reserved >= 0)
        {
            Tmds.Linux.LibC.close(s_reserved);
            s_reserved = -1;
        }
    }

    private static unsafe int OpenDevNull()
    {
        byte* path = stackalloc byte[] { (byte)'/', (byte)'d', (byte)'e', (byte)'v', (byte)'/', (byte)'n', (byte)'u', (byte)'l', (byte)'l', 0 };
        return Tmds.Linux.LibC.open(path, Tmds.Linux.LibC.O_RDONLY | Tmds.Linux.LibC.O_CLOEXEC);
    }

    /// <summary>libnftables' C API (nftables/libnftables.h).</summary>
    private static partial class NativeMethods
    {
        /// <summary>#define NFT_CTX_DEFAULT 0</summary>
        public const uint NFT_CTX_DEFAULT = 0;

        /// <summary>NFT_CTX_OUTPUT_JSON = (1 &lt;&lt; 4)</summary>
        public const uint NFT_CTX_OUTPUT_JSON = 1 << 4;

        /// <summary>struct nft_ctx *nft_ctx_new(uint32_t flags);</summary>
        [LibraryImport(Library)]
        public static partial IntPtr nft_ctx_new(uint flags);

        /// <summary>void nft_ctx_free(struct nft_ctx *ctx);</summary>
        [LibraryImport(Library)]
        public static partial void nft_ctx_free(IntPtr ctx);

        /// <summary>void nft_ctx_output_set_flags(struct nft_ctx *ctx, unsigned int flags);</summary>
        [LibraryImport(Library)]
        public static partial void nft_ctx_output_set_flags(IntPtr ctx, uint flags);

        /// <summary>int nft_ctx_buffer_output(struct nft_ctx *ctx);</summary>
        [LibraryImport(Library)]
        public static partial int nft_ctx_buffer_output(IntPtr ctx);

        /// <summary>int nft_ctx_buffer_error(struct nft_ctx *ctx);</summary>
        [LibraryImport(Library)]
        public static partial int nft_ctx_buffer_error(IntPtr ctx);

        /// <summary>const char *nft_ctx_get_output_buffer(struct nft_ctx *ctx);</summary>
        [LibraryImport(Library)]
        public static partial IntPtr nft_ctx_get_output_buffer(IntPtr ctx);

        /// <summary>const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx);</summary>
        [LibraryImport(Library)]
        public static partial IntPtr nft_ctx_get_error_buffer(IntPtr ctx);

        /// <summary>int nft_run_cmd_from_buffer(struct nft_ctx *nft, const char *buf);</summary>
        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int nft_run_cmd_from_buffer(IntPtr ctx, string buf);

        /// <summary>int mnl_socket_get_fd(const struct mnl_socket *nl);</summary>
        [LibraryImport(MnlLibrary)]
        public static partial int mnl_socket_get_fd(IntPtr nl);
    }
}

/// <summary>nft refused a command batch (or libnftables is missing): the batch in nft syntax and nft's own error text.</summary>
public sealed class NftablesException : Exception
{
    public NftablesException(string operation, string nftError, bool unavailable = false, Exception? inner = null)
        : base($"{operation}: {nftError}", inner)
    {
        Operation = operation;
        NftError = nftError;
        Unavailable = unavailable;
    }

    /// <summary>The batch, written as the <c>nft</c> command that does the same.</summary>
    public string Operation { get; }

    /// <summary>nft's error buffer ("Error: Could not process rule: No such file or directory ...").</summary>
    public string NftError { get; }

    /// <summary>True when libnftables could not be loaded at all.</summary>
    public bool Unavailable { get; }
}
