using System.Runtime.InteropServices;

namespace Matchlock.Integration.Tests;

internal static partial class Interop
{
    // Safe: sends a signal to a process this test started, by PID.
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>
    /// Opens a file for appending WITHOUT close-on-exec (as a shell redirect or flock(1) does), so
    /// every process this test process starts inherits it. Close it with <see cref="Close"/>.
    /// </summary>
    public static int OpenInheritable(string path)
    {
        const int WriteOnly = 0x1, Create = 0x40, Append = 0x400;
        var fd = Open(path, WriteOnly | Create | Append, 0b110_100_100);
        return fd >= 0 ? fd : throw new IOException($"open {path} failed (errno {Marshal.GetLastPInvokeError()})");
    }

    // Safe: a NUL-terminated UTF-8 path marshalled by the generator; returns a descriptor we own.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    // Safe: closes a descriptor this test opened.
    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
