namespace MobilityAgents.Datapath;

/// <summary>A system call of the userspace datapath failed: the operation (as a command or call) and the errno.</summary>
public sealed class DatapathException(string operation, int errno)
    : Exception($"{operation}: {MobilityAgents.Netlink.Errno.Name(errno)} ({new System.ComponentModel.Win32Exception(errno).Message})")
{
    /// <summary>What was being done, e.g. "socket(AF_INET, SOCK_RAW, IPPROTO_IPIP)".</summary>
    public string Operation { get; } = operation;

    /// <summary>The errno the kernel returned.</summary>
    public int Errno { get; } = errno;
}
