using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Matchlock.Core.Interop;

/// <summary>The few libc calls an owner needs that .NET does not expose.</summary>
public static partial class OwnerNative
{
    private const int SolSocket = 1;   // <asm-generic/socket.h>
    private const int SoPeerCred = 17; // socket(7): struct ucred { pid_t pid; uid_t uid; gid_t gid; }

    /// <summary>The effective uid of this process.</summary>
    public static uint EffectiveUid => geteuid();

    /// <summary>The uid of the process at the other end of a connected UNIX socket (socket(7), SO_PEERCRED).</summary>
    public static uint PeerUid(Socket socket) => BitConverter.ToUInt32(PeerCred(socket)[4..8]);

    /// <summary>The process at the other end of a connected UNIX socket (SO_PEERCRED).</summary>
    public static int PeerPid(Socket socket) => BitConverter.ToInt32(PeerCred(socket)[0..4]);

    private static byte[] PeerCred(Socket socket)
    {
        var cred = new byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        var n = socket.GetRawSocketOption(SolSocket, SoPeerCred, cred);
        return n < 12 ? throw new IOException("SO_PEERCRED returned a short struct ucred") : cred;
    }

    /// <summary>True while <paramref name="pid"/> exists and is not a zombie (exited, not yet reaped).</summary>
    public static bool IsAlive(int pid) => ProcessStartTime(pid) is not null;

    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks since boot), or null if no such process (or only its zombie).</summary>
    public static string? ProcessStartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");

            // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

            // A zombie has exited; it only waits for its parent (for a detached owner, whoever
            // adopted it) to reap it. It holds nothing and must count as gone.
            return fields[0] is "Z" or "X" ? null : fields[19];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return null;
        }
    }


    /// <summary>
    /// Detaches this process from its terminal and process group (setsid(2)): a Ctrl-C typed
    /// where <c>run -d</c> was started must not reach the owner. Returns false (EPERM) for a
    /// process group leader, which a child started by .NET's Process never is.
    /// </summary>
    public static bool StartNewSession() => setsid() >= 0;

    /// <summary>Points stdin, stdout and stderr at /dev/null (dup2(2)), once a detached owner has said all it will say.</summary>
    public static void RedirectStdioToDevNull()
    {
        using var devNull = File.Open("/dev/null", FileMode.Open, FileAccess.ReadWrite);
        var fd = (int)devNull.SafeFileHandle.DangerousGetHandle();
        for (var target = 0; target <= 2; target++)
        {
            if (dup2(fd, target) < 0)
            {
                throw new IOException($"dup2 onto fd {target} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
    }

    /// <summary>
    /// Marks every descriptor this process inherited (3 and up) close-on-exec, so a process it
    /// starts next does not keep them: the detached owner of <c>run -d</c> lives for hours, and
    /// without this it held whatever its caller had open — a <c>flock(1)</c> lock, a pipe a script
    /// waits on to reach EOF, a deleted file's space. .NET opens its own descriptors close-on-exec
    /// already; only foreign ones change. Best effort: a descriptor that closes meanwhile is skipped.
    /// </summary>
    public static void MarkInheritedDescriptorsCloseOnExec()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var fd) && fd > 2)
            {
                var flags = fcntl(fd, FGetFd, 0);
                if (flags >= 0 && (flags & FdCloExec) == 0)
                {
                    _ = fcntl(fd, FSetFd, flags | FdCloExec);
                }
            }
        }
    }

    private const int FGetFd = 1;   // <fcntl.h> F_GETFD
    private const int FSetFd = 2;   // F_SETFD
    private const int FdCloExec = 1; // FD_CLOEXEC

    // Safe: no pointers; the third argument is an int on every call (F_GETFD ignores it), which
    // the x86-64 and arm64 variadic conventions pass like a fixed int argument.
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    // Safe: no pointers; errno is read through SetLastError.
    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup2(int oldfd, int newfd);
}
