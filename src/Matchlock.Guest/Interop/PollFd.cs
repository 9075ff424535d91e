using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>struct pollfd (glibc x86-64: int fd, short events, short revents).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    internal const short PollIn = 0x1;

    internal int Fd;
    internal short Events;
    internal short Revents;
}
