using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>
/// Every libc call the guest makes. The binary links glibc statically (DirectPInvoke "libc"), so
/// these bind at link time and work in any image, including ones without a libc of their own.
/// </summary>
/// <remarks>
/// Safety, for all entries in this partial class: arguments are either blittable values, UTF-8
/// strings marshalled by the source generator (copied, NUL-terminated, freed after the call), or
/// pointers to memory the caller pins or allocates for the duration of the call; the comment on
/// each entry adds what else makes it safe. Layouts are glibc x86-64 (checked with a C program
/// against Debian 12's headers; values in <see cref="LibcConstants"/>).
/// </remarks>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    // File descriptors.

    /// <summary>Plain read(2); the buffer is pinned by the caller for the call.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial nint read(int fd, byte* buffer, nuint count);

    /// <summary>poll(2) on caller-owned pollfd structs (8 bytes each: int fd, short events, short revents).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>Plain write(2); the buffer is pinned by the caller for the call.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial nint write(int fd, byte* buffer, nuint count);

    /// <summary>close(2) of an fd we own and that no SafeHandle owns.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary>dup2(2): values only.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int dup2(int oldFd, int newFd);

    /// <summary>
    /// open(2) is variadic in C; on x86-64 System V an integer third argument travels in a
    /// register whether or not the callee uses va_arg, so declaring it fixed is sound.
    /// </summary>
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags, uint mode);

    /// <summary>fcntl(2), variadic like open: an integer third argument is passed in a register.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int fcntl(int fd, int command, int argument);

    /// <summary>pipe2(2): writes two ints into the caller's stack array.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int pipe2(int* fds, int flags);

    /// <summary>ioctl(2), variadic: the pointer argument travels in a register; callers pass a
    /// pointer to a struct of the size the request expects (winsize: 8 bytes).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, void* argument);

    // Files and directories.

    /// <summary>stat(2) (a real symbol since glibc 2.33) into a 144-byte glibc struct stat.</summary>
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int stat(string path, StatBuffer* buffer);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mkdir(string path, uint mode);

    /// <summary>mknod(2) (a real symbol since glibc 2.33); dev is glibc's 64-bit dev_t from <see cref="LibcConstants.MakeDev"/>.</summary>
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mknod(string path, uint mode, ulong dev);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chmod(string path, uint mode);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chown(string path, uint uid, uint gid);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int symlink(string target, string linkPath);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int unlink(string path);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chdir(string path);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chroot(string path);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int umask(int mask);

    // Mounts, kernel, power.

    /// <summary>mount(2); strings only, data may be null.</summary>
    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string? source, string target, string? fileSystemType, nuint flags, string? data);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);

    /// <summary>sync(2): no arguments, cannot fail.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial void sync();

    /// <summary>reboot(2) with an RB_* command; only PID 1 (CAP_SYS_BOOT) gets past EPERM.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int reboot(int command);

    /// <summary>
    /// syscall(2) is variadic; its glibc implementation is assembly that moves the six integer
    /// registers into place and never looks at %al, so fixed integer/pointer arguments are sound.
    /// Used for finit_module, which glibc does not wrap.
    /// </summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial nint syscall(nint number, nint argument1, nint argument2, nint argument3);

    /// <summary>sethostname(2): pointer to caller-pinned bytes and their length (no NUL needed).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int sethostname(byte* name, nuint length);

    /// <summary>clock_settime(2) from a caller stack struct.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int clock_settime(int clockId, Timespec* time);

    // Processes and identity.

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int getpid();

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial uint getuid();

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial uint getgid();

    /// <summary>kill(2): values only. Negative pid = process group; the caller guarantees the
    /// group cannot have been recycled (see Reaper).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    /// <summary>waitid(2) into a caller stack 128-byte siginfo_t.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int waitid(int idType, uint id, SigInfo* info, int options);

    /// <summary>waitpid(2) writing the status int on the caller's stack.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int waitpid(int pid, int* status, int options);

    /// <summary>setgroups(2) from a caller-pinned array (may be null when size is 0). glibc
    /// applies set*id calls to every thread of the process (POSIX semantics, via SIGSETXID).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int setgroups(nuint size, uint* list);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int setgid(uint gid);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int setuid(uint uid);

    /// <summary>execv(3): argv is a NUL-terminated array of NUL-terminated strings owned by the
    /// caller (NativeStringArray); on success it does not return. Keeps the current environ.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int execv(byte* path, byte** argv);

    /// <summary>_exit(2): ends the process without running managed shutdown.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial void _exit(int status);
}
