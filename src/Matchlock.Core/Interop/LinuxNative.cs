using System.Runtime.InteropServices;

namespace Matchlock.Core.Interop;

/// <summary>
/// The few libc calls the BCL lacks in a no-follow form: ownership, xattrs, timestamps and hard
/// links on the link itself, and FIFOs. Every call takes a path string marshalled as UTF-8 and
/// plain value arguments; the only pointers are to stack or pinned buffers that outlive the call,
/// which is what makes the unsafe blocks safe.
/// </summary>
internal static unsafe partial class LinuxNative
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;

    public const int ENOENT = 2;
    public const int EPERM = 1;
    public const int ENODATA = 61;
    public const int ENOTSUP = 95;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    public static uint EffectiveUserId => geteuid();

    /// <summary>lchown(2): changes the owner of the path itself, never a symlink's target.</summary>
    public static void LChown(string path, long uid, long gid)
    {
        if (lchown(path, checked((uint)uid), checked((uint)gid)) != 0)
        {
            throw Error("lchown", path);
        }
    }

    /// <summary>utimensat(2) with AT_SYMLINK_NOFOLLOW: sets atime and mtime of the path itself.</summary>
    public static void SetTimesNoFollow(string path, DateTimeOffset mtime)
    {
        var ticks = mtime.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        var times = stackalloc Timespec[2];
        times[0] = new Timespec { Seconds = seconds, Nanoseconds = rest * 100 };
        times[1] = times[0];
        if (utimensat(AtFdCwd, path, times, AtSymlinkNoFollow) != 0)
        {
            throw Error("utimensat", path);
        }
    }

    /// <summary>lsetxattr(2). Returns the errno (0 on success) so callers can word ENOTSUP themselves.</summary>
    public static int LSetXattr(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
        {
            return lsetxattr(path, name, p, (nuint)value.Length, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>lgetxattr(2); null when the attribute is absent.</summary>
    public static byte[]? LGetXattr(string path, string name)
    {
        var buffer = new byte[65536];
        fixed (byte* p = buffer)
        {
            var n = lgetxattr(path, name, p, (nuint)buffer.Length);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                return errno == ENODATA ? null : throw Error("lgetxattr", path, errno);
            }

            return buffer[..(int)n];
        }
    }

    public static void MkFifo(string path, int mode)
    {
        if (mkfifo(path, (uint)mode) != 0)
        {
            throw Error("mkfifo", path);
        }
    }

    /// <summary>linkat(2) without AT_SYMLINK_FOLLOW: links the existing path itself (never a symlink's target).</summary>
    public static void HardLink(string existing, string newPath)
    {
        if (linkat(AtFdCwd, existing, AtFdCwd, newPath, 0) != 0)
        {
            throw Error("link", $"{newPath} -> {existing}");
        }
    }

    private static IOException Error(string call, string path, int? errno = null)
    {
        var e = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{call}(\"{path}\") failed: {Marshal.GetPInvokeErrorMessage(e)} (errno {e})", e);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int utimensat(int dirfd, string path, Timespec* times, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lsetxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint lgetxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);
}
