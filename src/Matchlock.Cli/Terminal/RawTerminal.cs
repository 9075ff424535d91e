using System.Runtime.InteropServices;

namespace Matchlock.Cli.Terminal;

/// <summary>
/// Puts the host terminal in raw mode for <c>-it</c> (keys, Ctrl-C included, go to the guest's
/// PTY untouched) and restores it on dispose. .NET has no public API for raw mode.
/// </summary>
internal sealed partial class RawTerminal : IDisposable
{
    private const int StdinFd = 0;
    private const int TcsaNow = 0;
    private const ulong TiocGwinsz = 0x5413;

    // glibc x86-64 struct termios is 60 bytes; a larger opaque buffer is safe for tcgetattr/cfmakeraw/tcsetattr.
    private readonly byte[] _saved = new byte[128];
    private bool _restored;

    private RawTerminal()
    {
    }

    /// <summary>Enters raw mode if stdin is a terminal; null otherwise.</summary>
    public static RawTerminal? TryEnter()
    {
        if (Console.IsInputRedirected || isatty(StdinFd) != 1)
        {
            return null;
        }

        var terminal = new RawTerminal();
        if (tcgetattr(StdinFd, terminal._saved) != 0)
        {
            return null;
        }

        var raw = (byte[])terminal._saved.Clone();
        cfmakeraw(raw);
        return tcsetattr(StdinFd, TcsaNow, raw) == 0 ? terminal : null;
    }

    /// <summary>The size of the terminal on fd 1 (or 0), or null if neither is a terminal.</summary>
    public static (int Rows, int Cols)? GetSize()
    {
        Span<ushort> winsize = stackalloc ushort[4];
        foreach (var fd in new[] { 1, 0 })
        {
            if (ioctl(fd, TiocGwinsz, ref MemoryMarshal.GetReference(winsize)) == 0 && winsize[0] > 0 && winsize[1] > 0)
            {
                return (winsize[0], winsize[1]);
            }
        }

        return null;
    }

    public void Dispose()
    {
        if (!_restored)
        {
            _restored = true;
            _ = tcsetattr(StdinFd, TcsaNow, _saved);
        }
    }

    // Safe: fd 0 is ours for the process lifetime; buffers are larger than struct termios.
    [LibraryImport("libc")]
    private static partial int isatty(int fd);

    [LibraryImport("libc")]
    private static partial int tcgetattr(int fd, [Out] byte[] termios);

    [LibraryImport("libc")]
    private static partial int tcsetattr(int fd, int optionalActions, byte[] termios);

    [LibraryImport("libc")]
    private static partial void cfmakeraw(byte[] termios);

    // Safe: TIOCGWINSZ writes one struct winsize (4 x u16) into the span we pass.
    [LibraryImport("libc")]
    private static partial int ioctl(int fd, ulong request, ref ushort winsize);
}
