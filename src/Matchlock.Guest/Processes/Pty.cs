using System.Runtime.InteropServices;
using Matchlock.Guest.Interop;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Processes;

/// <summary>
/// A pseudo-terminal pair (pty(7)). We keep only the master; the child opens the slave by path in
/// a spawn file action, so when the child and everything it started have closed the slave, reads
/// on the master end with EIO (<see cref="FdStream"/> turns that into end of stream).
/// </summary>
internal sealed unsafe class Pty : IDisposable
{
    private Pty(SafeFileHandle master, string slavePath)
    {
        Master = master;
        SlavePath = slavePath;
    }

    internal SafeFileHandle Master { get; }

    /// <summary>/dev/pts/N, valid in the namespace (and root) that opened /dev/ptmx.</summary>
    internal string SlavePath { get; }

    internal static Pty Open(ushort rows, ushort columns)
    {
        // O_NOCTTY: the master must never become PID 1's controlling terminal.
        var fd = Libc.posix_openpt(LibcConstants.O_RDWR | LibcConstants.O_NOCTTY | LibcConstants.O_CLOEXEC);
        if (fd < 0)
        {
            throw NativeCallException.FromLastError("posix_openpt (is devpts mounted on /dev/pts with /dev/ptmx -> pts/ptmx?)");
        }

        var master = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (Libc.grantpt(fd) != 0)
            {
                throw NativeCallException.FromLastError("grantpt");
            }

            if (Libc.unlockpt(fd) != 0)
            {
                throw NativeCallException.FromLastError("unlockpt");
            }

            const int NameLength = 128;
            var name = stackalloc byte[NameLength];
            var error = Libc.ptsname_r(fd, name, NameLength);
            if (error != 0)
            {
                throw new NativeCallException("ptsname_r", error);
            }

            var pty = new Pty(master, Marshal.PtrToStringUTF8((nint)name) ?? throw new InvalidOperationException("ptsname_r returned no name"));
            pty.Resize(rows, columns);
            return pty;
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }

    /// <summary>TIOCSWINSZ on the master; the kernel sends SIGWINCH to the foreground group.</summary>
    internal void Resize(ushort rows, ushort columns)
    {
        var size = new WinSize { Rows = rows, Columns = columns };
        if (Libc.ioctl((int)Master.DangerousGetHandle(), LibcConstants.TIOCSWINSZ, &size) != 0)
        {
            throw NativeCallException.FromLastError("ioctl(TIOCSWINSZ)");
        }
    }

    /// <summary>Lets a non-root command reopen its terminal by name (ssh, sudo, gpg do).</summary>
    internal void GiveSlaveTo(uint uid)
    {
        if (Libc.chown(SlavePath, uid, uint.MaxValue) != 0)
        {
            throw NativeCallException.FromLastError($"chown {SlavePath}");
        }
    }

    public override string ToString() => SlavePath;

    public void Dispose() => Master.Dispose();
}
