using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>The one socket call the guest needs itself: bringing the loopback interface up.</summary>
internal static unsafe partial class Libc
{
    /// <summary>socket(2): values only; the caller closes the fd.</summary>
    [LibraryImport(Lib, SetLastError = true)]
    internal static partial int socket(int domain, int type, int protocol);
}
