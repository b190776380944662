using System.Collections;
using System.Runtime.InteropServices;
using System.Text;

namespace MobilityAgents.Bench;

/// <summary>
/// Runs a program with posix_spawnp(3) and waits for it: stdin from /dev/null, stdout and stderr
/// to files (or /dev/null). Used instead of System.Diagnostics.Process so that `ip` writes its
/// output straight to /dev/null as it would in a shell (no pipe for us to drain while we time it),
/// and so that the measured start-up is that of a plain fork/exec.
/// </summary>
internal static unsafe partial class Spawn
{
    private const int O_WRONLY = 0x1;
    private const int O_CREAT = 0x40;
    private const int O_TRUNC = 0x200;
    private const int O_RDONLY = 0;
    private const int EINTR = 4;
    private const int FileActionsSize = 256; // glibc's posix_spawn_file_actions_t is 80 bytes; room to spare

    private const int RusageSize = 256; // struct rusage is 144 bytes on 64-bit Linux; its first two fields are the user and system timevals

    /// <summary>The result of one run: exit code (128 + signal if killed), stderr text, and the child's CPU time (user + system).</summary>
    internal readonly record struct Result(int ExitCode, string StandardError, double CpuSeconds);

    /// <summary>CPU time (user + system, every thread) this process has used so far: getrusage(RUSAGE_SELF).</summary>
    public static double ProcessCpuSeconds()
    {
        long* ru = stackalloc long[RusageSize / sizeof(long)];
        if (getrusage(0, ru) != 0)
        {
            throw new InvalidOperationException($"getrusage: errno {Marshal.GetLastPInvokeError()}");
        }

        return CpuSeconds(ru);
    }

    private static double CpuSeconds(long* ru) => ru[0] + (ru[1] / 1e6) + ru[2] + (ru[3] / 1e6);

    /// <summary>Runs <paramref name="file"/> (searched in PATH) with <paramref name="args"/>; stdout goes to <paramref name="stdoutPath"/>.</summary>
    public static Result Run(string file, IReadOnlyList<string> args, string stdoutPath, string stderrPath)
    {
        // Everything the child needs is marshalled before the spawn, so the caller's stopwatch sees little of it.
        var strings = new List<nint>();
        nint Native(string s)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(s);
            strings.Add(p);
            return p;
        }

        byte** argv = (byte**)NativeMemory.AllocZeroed((nuint)(args.Count + 2), (nuint)sizeof(nint));
        var env = Environment.GetEnvironmentVariables();
        byte** envp = (byte**)NativeMemory.AllocZeroed((nuint)(env.Count + 1), (nuint)sizeof(nint));
        void* fa = NativeMemory.AllocZeroed(FileActionsSize);
        try
        {
            argv[0] = (byte*)Native(file);
            for (int i = 0; i < args.Count; i++)
            {
                argv[i + 1] = (byte*)Native(args[i]);
            }

            int e = 0;
            foreach (DictionaryEntry kv in env)
            {
                envp[e++] = (byte*)Native($"{kv.Key}={kv.Value}");
            }

            Check(posix_spawn_file_actions_init(fa), "posix_spawn_file_actions_init");
            try
            {
                Check(posix_spawn_file_actions_addopen(fa, 0, (byte*)Native("/dev/null"), O_RDONLY, 0), "addopen stdin");
                Check(posix_spawn_file_actions_addopen(fa, 1, (byte*)Native(stdoutPath), O_WRONLY | O_CREAT | O_TRUNC, 0x180), "addopen stdout");
                Check(posix_spawn_file_actions_addopen(fa, 2, (byte*)Native(stderrPath), O_WRONLY | O_CREAT | O_TRUNC, 0x180), "addopen stderr");
                int pid;
                int rc = posix_spawnp(&pid, argv[0], fa, null, argv, envp);
                if (rc != 0)
                {
                    throw new InvalidOperationException($"posix_spawnp {file}: errno {rc} ({Marshal.GetPInvokeErrorMessage(rc)})");
                }

                long* ru = stackalloc long[RusageSize / sizeof(long)];
                int status = Wait(pid, file, ru);
                int code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
                string stderr = code != 0 && stderrPath != "/dev/null" && File.Exists(stderrPath) ? File.ReadAllText(stderrPath, Encoding.UTF8).Trim() : "";
                return new Result(code, stderr, CpuSeconds(ru));
            }
            finally
            {
                _ = posix_spawn_file_actions_destroy(fa);
            }
        }
        finally
        {
            foreach (nint p in strings)
            {
                Marshal.FreeCoTaskMem(p);
            }

            NativeMemory.Free(argv);
            NativeMemory.Free(envp);
            NativeMemory.Free(fa);
        }
    }

    private static int Wait(int pid, string file, long* rusage)
    {
        int status;
        while (wait4(pid, &status, 0, rusage) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                throw new InvalidOperationException($"wait4 for {file} (pid {pid}): errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})");
            }
        }

        return status;
    }

    private static void Check(int rc, string what)
    {
        if (rc != 0)
        {
            throw new InvalidOperationException($"{what}: errno {rc} ({Marshal.GetPInvokeErrorMessage(rc)})");
        }
    }

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(void* fileActions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(void* fileActions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_addopen(void* fileActions, int fd, byte* path, int oflag, uint mode);

    [LibraryImport("libc")]
    private static partial int posix_spawnp(int* pid, byte* file, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int wait4(int pid, int* status, int options, long* rusage);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrusage(int who, long* rusage);
}
