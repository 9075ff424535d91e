using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>struct winsize (TIOCSWINSZ).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct WinSize
{
    internal ushort Rows;
    internal ushort Columns;
    internal ushort XPixels;
    internal ushort YPixels;
}
