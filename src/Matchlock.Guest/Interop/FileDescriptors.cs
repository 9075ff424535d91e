using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Interop;

/// <summary>Small fd helpers: pipes, opening, liveness.</summary>
internal static unsafe class FileDescriptors
{
    /// <summary>pipe2(O_CLOEXEC): neither end leaks into a child unless a file action dup2s it.</summary>
    internal static (SafeFileHandle Read, SafeFileHandle Write) CreatePipe()
    {
        var fds = stackalloc int[2];
        if (Libc.pipe2(fds, LibcConstants.O_CLOEXEC) != 0)
        {
            throw NativeCallException.FromLastError("pipe2");
        }

        return (new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>open(2) with O_CLOEXEC added; throws with the path named.</summary>
    internal static SafeFileHandle Open(string path, int flags, uint mode = 0)
    {
        var fd = Libc.open(path, flags | LibcConstants.O_CLOEXEC, mode);
        if (fd < 0)
        {
            throw NativeCallException.FromLastError($"open {path}");
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    internal static bool IsOpen(int fd) => Libc.fcntl(fd, LibcConstants.F_GETFD, 0) >= 0;

    /// <summary>Writes all bytes to a raw fd we do not own (0/1/2), ignoring failures: used for
    /// diagnostics where there is nowhere else to report.</summary>
    internal static void WriteAll(int fd, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            var done = 0;
            while (done < bytes.Length)
            {
                var n = Libc.write(fd, p + done, (nuint)(bytes.Length - done));
                if (n < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR)
                {
                    continue;
                }

                if (n <= 0)
                {
                    return;
                }

                done += (int)n;
            }
        }
    }
}
