using System.Runtime.InteropServices;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Init;

/// <summary>
/// Brings "lo" up. A fresh kernel leaves it down, and then nothing reaches localhost (/etc/hosts
/// points there); container runtimes do this when they set up the network namespace.
/// </summary>
internal static class Loopback
{
    private const int AF_INET = 2;
    private const int SOCK_DGRAM = 2;
    private const int SOCK_CLOEXEC = 0x80000;
    private const nuint SIOCGIFFLAGS = 0x8913;
    private const nuint SIOCSIFFLAGS = 0x8914;
    private const short IFF_UP = 0x1;

    internal static unsafe void BringUp()
    {
        var fd = Libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw NativeCallException.FromLastError("socket(AF_INET)");
        }

        try
        {
            // struct ifreq: char ifr_name[16], then a union whose first short is ifr_flags; 40 bytes.
            var request = stackalloc byte[40];
            new Span<byte>(request, 40).Clear();
            "lo"u8.CopyTo(new Span<byte>(request, 16));
            if (Libc.ioctl(fd, SIOCGIFFLAGS, request) != 0)
            {
                throw NativeCallException.FromLastError("ioctl(SIOCGIFFLAGS lo)");
            }

            *(short*)(request + 16) |= IFF_UP;
            if (Libc.ioctl(fd, SIOCSIFFLAGS, request) != 0)
            {
                throw new NativeCallException("ioctl(SIOCSIFFLAGS lo up)", Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            _ = Libc.close(fd);
        }
    }
}
