using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>Pseudo-terminal allocation (pty(7)).</summary>
internal static unsafe partial class Libc
{
    /// <summary>Opens /dev/ptmx; returns an fd we then own.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int posix_openpt(int flags);

    /// <summary>With devpts this only validates the fd (no pt_chown helper is run).</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int grantpt(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int unlockpt(int fd);

    /// <summary>Reentrant ptsname: writes at most length bytes into a caller stack buffer.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int ptsname_r(int fd, byte* buffer, nuint length);
}
