namespace MobilityAgents.Netlink;

/// <summary>
/// The kernel refused a netlink request. Carries the operation as its <c>ip</c> equivalent, the
/// errno and its name, and the kernel's extended-ack message and attribute offset when it sent them.
/// </summary>
public class NetlinkException : Exception
{
    public NetlinkException(string operation, int errno, string? extAckMessage = null, int? extAckOffset = null, uint sequence = 0)
        : base(Format(operation, errno, extAckMessage, extAckOffset))
    {
        Operation = operation;
        Errno = errno;
        ExtAckMessage = extAckMessage;
        ExtAckOffset = extAckOffset;
        Sequence = sequence;
    }

    /// <summary>The operation, written as the <c>ip</c> command that does the same.</summary>
    public string Operation { get; }

    /// <summary>The positive errno the kernel returned.</summary>
    public int Errno { get; }

    /// <summary>The C name of <see cref="Errno"/>, e.g. "EEXIST".</summary>
    public string ErrnoName => MobilityAgents.Netlink.Errno.Name(Errno);

    /// <summary>NLMSGERR_ATTR_MSG: the kernel's own explanation, when it gave one.</summary>
    public string? ExtAckMessage { get; }

    /// <summary>NLMSGERR_ATTR_OFFS: offset in the request of the attribute the kernel rejected.</summary>
    public int? ExtAckOffset { get; }

    /// <summary>The netlink sequence number of the request.</summary>
    public uint Sequence { get; }

    /// <summary>True for "already exists" (EEXIST).</summary>
    public bool IsExists => Errno == MobilityAgents.Netlink.Errno.EEXIST;

    /// <summary>True for "no such object" (ENOENT, ESRCH, ENODEV, EADDRNOTAVAIL as the kernel uses them for deletes).</summary>
    public bool IsNotFound => Errno is MobilityAgents.Netlink.Errno.ENOENT or MobilityAgents.Netlink.Errno.ESRCH;

    private static string Format(string op, int errno, string? msg, int? offset)
    {
        string s = $"{op}: {MobilityAgents.Netlink.Errno.Name(errno)} ({new System.ComponentModel.Win32Exception(errno).Message})";
        if (!string.IsNullOrEmpty(msg))
        {
            s += $": {msg}";
        }

        if (offset is { } o)
        {
            s += $" (at offset {o} of the request)";
        }

        return s;
    }
}

/// <summary>
/// A dump was interrupted because the kernel's tables changed while it ran (NLM_F_DUMP_INTR): the
/// result may be inconsistent. Retryable: run the dump again.
/// </summary>
public sealed class NetlinkDumpInterruptedException(string operation)
    : NetlinkException(operation, MobilityAgents.Netlink.Errno.EINTR, "dump interrupted by a concurrent change (NLM_F_DUMP_INTR); retry")
{
}

/// <summary>A socket-level failure (socket, bind, setsockopt, send, recv, setns), as opposed to a refusal by the kernel's netlink handler.</summary>
public sealed class NetlinkSocketException(string operation, int errno)
    : Exception($"{operation}: {MobilityAgents.Netlink.Errno.Name(errno)} ({new System.ComponentModel.Win32Exception(errno).Message})")
{
    public string Operation { get; } = operation;

    public int Errno { get; } = errno;
}

/// <summary>A netlink message or attribute is malformed: truncated, or with a length that lies.</summary>
public sealed class NetlinkParseException(string context, string problem, int offset)
    : Exception(offset >= 0 ? $"malformed netlink data in {context} at offset {offset}: {problem}" : $"malformed netlink data in {context}: {problem}")
{
    public string Context { get; } = context;

    public int Offset { get; } = offset;
}
