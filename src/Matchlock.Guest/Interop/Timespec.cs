using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>struct timespec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timespec
{
    internal long Seconds;
    internal long Nanoseconds;
}
