namespace Matchlock.Guest.Interop;

/// <summary>errno values the guest reacts to (asm-generic/errno-base.h).</summary>
internal static class Errno
{
    internal const int EPERM = 1;
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EINTR = 4;
    internal const int EIO = 5;
    internal const int ENOEXEC = 8;
    internal const int ECHILD = 10;
    internal const int EAGAIN = 11;
    internal const int EACCES = 13;
    internal const int EBUSY = 16;
    internal const int EEXIST = 17;
    internal const int ENOTDIR = 20;
    internal const int EISDIR = 21;
    internal const int EINVAL = 22;
    internal const int ENODEV = 19;
    internal const int EROFS = 30;
    internal const int EPROTO = 71;
    internal const int ECONNABORTED = 103;
}
