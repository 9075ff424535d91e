namespace Matchlock.Guest.Interop;

/// <summary>
/// glibc x86-64 constants, printed from Debian 12's headers with a C program (sizeof and
/// offsetof included) rather than copied from memory.
/// </summary>
internal static class LibcConstants
{
    // fcntl.h
    internal const int O_RDONLY = 0;
    internal const int O_WRONLY = 1;
    internal const int O_RDWR = 2;
    internal const int O_NOCTTY = 0x100;        // 0400
    internal const int O_NONBLOCK = 0x800;      // 04000
    internal const int O_DIRECTORY = 0x10000;   // 0200000
    internal const int O_CLOEXEC = 0x80000;     // 02000000
    internal const int O_PATH = 0x200000;       // 010000000
    internal const int F_GETFD = 1;

    // sys/stat.h
    internal const uint S_IFCHR = 0x2000;       // 0020000

    // spawn.h
    internal const short POSIX_SPAWN_SETPGROUP = 0x02;
    internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
    internal const short POSIX_SPAWN_SETSIGMASK = 0x08;
    internal const short POSIX_SPAWN_SETSID = 0x80;

    // sys/wait.h
    internal const int P_ALL = 0;
    internal const int WEXITED = 4;
    internal const int WNOWAIT = 0x01000000;
    internal const int __WALL = 0x40000000;

    // sys/mount.h
    internal const nuint MS_RDONLY = 1;
    internal const nuint MS_NOSUID = 2;
    internal const nuint MS_NODEV = 4;
    internal const nuint MS_NOEXEC = 8;
    internal const nuint MS_REMOUNT = 32;
    internal const nuint MS_NOATIME = 1024;
    internal const nuint MS_BIND = 0x1000;
    internal const nuint MS_MOVE = 0x2000;
    internal const int MNT_DETACH = 2;

    /// <summary>glibc's gnu_dev_makedev (sys/sysmacros.h): minor bits 0-7 and 20-31, major bits 8-19 and 32-63.</summary>
    internal static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xFFF) << 8) | (minor & 0xFF) | ((ulong)(minor & ~0xFFu) << 12) | ((ulong)(major & ~0xFFFu) << 32);

    // sys/reboot.h
    internal const int RB_AUTOBOOT = 0x01234567;

    // asm/ioctls.h
    internal const nuint TIOCSCTTY = 0x540E;
    internal const nuint TIOCGWINSZ = 0x5413;
    internal const nuint TIOCSWINSZ = 0x5414;

    // time.h
    internal const int CLOCK_REALTIME = 0;

    // sys/syscall.h
    internal const nint SYS_finit_module = 313;

    // signal.h
    internal const int SIGHUP = 1;
    internal const int SIGINT = 2;
    internal const int SIGQUIT = 3;
    internal const int SIGKILL = 9;
    internal const int SIGTERM = 15;
}
