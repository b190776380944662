namespace MobilityAgents.Netlink;

/// <summary>Linux errno numbers (asm-generic/errno-base.h, errno.h; x86_64 and arm64 share them) and their names.</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int ERANGE = 34;
    public const int ENOTSUP = 95;
    public const int EOPNOTSUPP = 95;
    public const int EAFNOSUPPORT = 97;
    public const int EADDRINUSE = 98;
    public const int EADDRNOTAVAIL = 99;
    public const int ENETDOWN = 100;
    public const int ENETUNREACH = 101;
    public const int ENOBUFS = 105;
    public const int EHOSTUNREACH = 113;
    public const int EMSGSIZE = 90;
    public const int EPROTONOSUPPORT = 93;
    public const int ENOTTY = 25;
    public const int ENOPROTOOPT = 92;

    private static readonly string[] Names = BuildNames();

    private static string[] BuildNames()
    {
        var n = new string[134];
        void S(int e, string s) => n[e] = s;
        S(1, "EPERM"); S(2, "ENOENT"); S(3, "ESRCH"); S(4, "EINTR"); S(5, "EIO"); S(6, "ENXIO"); S(7, "E2BIG");
        S(8, "ENOEXEC"); S(9, "EBADF"); S(10, "ECHILD"); S(11, "EAGAIN"); S(12, "ENOMEM"); S(13, "EACCES");
        S(14, "EFAULT"); S(15, "ENOTBLK"); S(16, "EBUSY"); S(17, "EEXIST"); S(18, "EXDEV"); S(19, "ENODEV");
        S(20, "ENOTDIR"); S(21, "EISDIR"); S(22, "EINVAL"); S(23, "ENFILE"); S(24, "EMFILE"); S(25, "ENOTTY");
        S(26, "ETXTBSY"); S(27, "EFBIG"); S(28, "ENOSPC"); S(29, "ESPIPE"); S(30, "EROFS"); S(31, "EMLINK");
        S(32, "EPIPE"); S(33, "EDOM"); S(34, "ERANGE"); S(35, "EDEADLK"); S(36, "ENAMETOOLONG"); S(37, "ENOLCK");
        S(38, "ENOSYS"); S(39, "ENOTEMPTY"); S(40, "ELOOP"); S(42, "ENOMSG"); S(43, "EIDRM"); S(61, "ENODATA");
        S(62, "ETIME"); S(67, "ENOLINK"); S(71, "EPROTO"); S(74, "EBADMSG"); S(75, "EOVERFLOW");
        S(84, "EILSEQ"); S(88, "ENOTSOCK"); S(89, "EDESTADDRREQ"); S(90, "EMSGSIZE"); S(91, "EPROTOTYPE");
        S(92, "ENOPROTOOPT"); S(93, "EPROTONOSUPPORT"); S(94, "ESOCKTNOSUPPORT"); S(95, "EOPNOTSUPP");
        S(96, "EPFNOSUPPORT"); S(97, "EAFNOSUPPORT"); S(98, "EADDRINUSE"); S(99, "EADDRNOTAVAIL");
        S(100, "ENETDOWN"); S(101, "ENETUNREACH"); S(102, "ENETRESET"); S(103, "ECONNABORTED");
        S(104, "ECONNRESET"); S(105, "ENOBUFS"); S(106, "EISCONN"); S(107, "ENOTCONN"); S(110, "ETIMEDOUT");
        S(111, "ECONNREFUSED"); S(112, "EHOSTDOWN"); S(113, "EHOSTUNREACH"); S(114, "EALREADY");
        S(115, "EINPROGRESS"); S(122, "EDQUOT"); S(125, "ECANCELED"); S(133, "EHWPOISON");
        return n;
    }

    /// <summary>The C name of an errno ("ENOENT"), or "errno N" for one without a name here.</summary>
    public static string Name(int errno) =>
        errno > 0 && errno < Names.Length && Names[errno] is { } s ? s : $"errno {errno}";
}
