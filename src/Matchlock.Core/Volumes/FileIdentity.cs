using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Core.Volumes;

/// <summary>
/// What statx(2) says about a file: which inode it is, whether a name still leads to it, and how
/// much it really occupies (volumes are sparse). statx rather than stat because its buffer has
/// one layout on every architecture.
/// </summary>
internal readonly partial record struct FileIdentity(ulong Device, ulong Inode, uint Links, long Size, long AllocatedBytes, uint Mode)
{
    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7FF;
    private const int StatxBufferSize = 256;

    /// <summary>The file a path names now (following symlinks).</summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    public static FileIdentity Of(string path) => Query(AtFdCwd, path, 0, path);

    /// <summary>The file an open descriptor refers to, named or not.</summary>
    public static FileIdentity Of(SafeFileHandle handle)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return Query((int)handle.DangerousGetHandle(), "", AtEmptyPath, "an open file");
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>A regular file: not a directory, a device, a FIFO or a socket (S_ISREG).</summary>
    public bool IsRegularFile => (Mode & 0xF000 /* S_IFMT */) == 0x8000 /* S_IFREG */;

    /// <summary>True when both name the same inode.</summary>
    public bool SameFileAs(FileIdentity other) => Device == other.Device && Inode == other.Inode;

    private static unsafe FileIdentity Query(int dirFd, string path, int flags, string what)
    {
        // struct statx (include/uapi/linux/stat.h): the offsets below are fixed by the kernel ABI.
        // The buffer is on our stack and outlives the call, which is what makes this safe.
        var buffer = stackalloc byte[StatxBufferSize];
        if (statx(dirFd, path, flags, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno == 2
                ? new FileNotFoundException($"{what} does not exist", path)
                : new IOException($"statx {what}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var links = *(uint*)(buffer + 16);
        var mode = *(ushort*)(buffer + 28);
        var inode = *(ulong*)(buffer + 32);
        var size = *(long*)(buffer + 40);
        var blocks = *(long*)(buffer + 48); // 512-byte units, whatever the block size
        var devMajor = *(uint*)(buffer + 136);
        var devMinor = *(uint*)(buffer + 140);
        return new FileIdentity(((ulong)devMajor << 32) | devMinor, inode, links, size, blocks * 512, mode);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
