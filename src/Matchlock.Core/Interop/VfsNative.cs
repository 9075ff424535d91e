using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Core.Interop;

/// <summary>
/// The descriptor-relative syscalls the host VFS provider is built from (docs/VFS.md). Every call
/// takes a directory or node descriptor and at most one path component; none resolves a
/// multi-component host path. Descriptors travel as <see cref="SafeFileHandle"/>, so the marshaller
/// holds a reference for the length of the call and a concurrent FORGET cannot close (and the
/// kernel cannot reuse) a descriptor under a running syscall. Results are raw: a negative return
/// and the errno, read by the caller with <see cref="Marshal.GetLastPInvokeError"/>. The only
/// pointers are to stack buffers or arrays pinned for the call, which is what makes the unsafe
/// blocks safe.
/// </summary>
internal static unsafe partial class VfsNative
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;
    public const int AtSymlinkFollow = 0x400;
    public const int AtEmptyPath = 0x1000;

    public const int ORdOnly = 0;
    public const int OWrOnly = 1;
    public const int ORdWr = 2;
    public const int OAccMode = 3;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ONoCtty = 0x100;
    public const int OTrunc = 0x200;
    public const int OAppend = 0x400;
    public const int ONonBlock = 0x800;
    public const int ODirectory = 0x10000;
    public const int ONoFollow = 0x20000;
    public const int OCloExec = 0x80000;
    public const int OPath = 0x200000;

    public const ulong ResolveNoMagicLinks = 0x02;
    public const ulong ResolveBeneath = 0x08;

    public const uint SIfMt = 0xF000;
    public const uint SIfDir = 0x4000;
    public const uint SIfReg = 0x8000;
    public const uint SIfLnk = 0xA000;

    private const uint StatxBasicStats = 0x7FF;
    private const long SysOpenat2 = 437;
    private const long UtimeNow = (1L << 30) - 1;
    private const long UtimeOmit = (1L << 30) - 2;

    /// <summary>struct statx (statx(2)); the same layout on every Linux architecture, unlike struct stat.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    public struct Statx
    {
        public uint Mask;
        public uint BlkSize;
        public ulong Attributes;
        public uint Nlink;
        public uint Uid;
        public uint Gid;
        public ushort Mode;
        private ushort _spare0;
        public ulong Ino;
        public ulong Size;
        public ulong Blocks;
        public ulong AttributesMask;
        public StatxTimestamp Atime;
        public StatxTimestamp Btime;
        public StatxTimestamp Ctime;
        public StatxTimestamp Mtime;
        public uint RdevMajor;
        public uint RdevMinor;
        public uint DevMajor;
        public uint DevMinor;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct StatxTimestamp
    {
        public long Seconds;
        public uint Nanoseconds;
        private int _reserved;
    }

    /// <summary>struct statfs on 64-bit Linux (x86_64 and arm64 share it: every word is a long).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatFs
    {
        public long Type;
        public long BSize;
        public ulong Blocks;
        public ulong BFree;
        public ulong BAvail;
        public ulong Files;
        public ulong FFree;
        public long Fsid;
        public long NameLen;
        public long FrSize;
        public long Flags;
        private long _spare0;
        private long _spare1;
        private long _spare2;
        private long _spare3;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    public static int LastError => Marshal.GetLastPInvokeError();

    public static uint EffectiveUserId => geteuid();

    /// <summary>
    /// openat2(2) on an absolute path with the given resolve flags; falls back to openat(2) when the
    /// kernel predates openat2 (ENOSYS). Returns an invalid handle and sets the errno on failure.
    /// </summary>
    public static SafeFileHandle OpenAt2(string path, int flags, ulong resolve)
    {
        var how = new OpenHow { Flags = (ulong)(uint)flags, Resolve = resolve };
        var fd = (int)syscall_openat2(SysOpenat2, AtFdCwd, path, &how, (nuint)sizeof(OpenHow));
        if (fd < 0 && Marshal.GetLastPInvokeError() == 38)
        {
            fd = openat_cwd(AtFdCwd, path, flags, 0);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>openat(2) of one name relative to a directory descriptor.</summary>
    public static SafeFileHandle OpenAt(SafeFileHandle dir, ReadOnlySpan<byte> name, int flags, uint mode)
    {
        var fd = openat(dir, NullTerminated(name), flags, mode);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Opens a node again with real access flags through its /proc/self/fd magic link, the way
    /// virtiofsd turns an O_PATH descriptor into an I/O one. The link names the inode the node
    /// already holds, never a path, so it cannot lead anywhere new.
    /// </summary>
    public static SafeFileHandle Reopen(SafeFileHandle node, int flags)
    {
        var added = false;
        node.DangerousAddRef(ref added);
        try
        {
            var fd = openat_cwd(AtFdCwd, ProcPath(node), flags & ~(ONoFollow | OCreat | OExcl | ONoCtty) | OCloExec, 0);
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        finally
        {
            node.DangerousRelease();
        }
    }

    /// <summary>statx(2) of the node itself (AT_EMPTY_PATH, never following a symlink).</summary>
    public static int StatxNode(SafeFileHandle node, out Statx st)
    {
        st = default;
        fixed (Statx* p = &st)
        {
            return statx(node, ""u8, AtEmptyPath | AtSymlinkNoFollow, StatxBasicStats, p) == 0 ? 0 : LastError;
        }
    }

    public static int FStatFs(SafeFileHandle node, out StatFs st)
    {
        st = default;
        fixed (StatFs* p = &st)
        {
            return fstatfs(node, p) == 0 ? 0 : LastError;
        }
    }

    public static int MkdirAt(SafeFileHandle dir, ReadOnlySpan<byte> name, uint mode) =>
        mkdirat(dir, NullTerminated(name), mode) == 0 ? 0 : LastError;

    public static int SymlinkAt(ReadOnlySpan<byte> target, SafeFileHandle dir, ReadOnlySpan<byte> name) =>
        symlinkat(NullTerminated(target), dir, NullTerminated(name)) == 0 ? 0 : LastError;

    public static int UnlinkAt(SafeFileHandle dir, ReadOnlySpan<byte> name, int flags) =>
        unlinkat(dir, NullTerminated(name), flags) == 0 ? 0 : LastError;

    public static int RenameAt2(SafeFileHandle oldDir, ReadOnlySpan<byte> oldName, SafeFileHandle newDir, ReadOnlySpan<byte> newName, uint flags) =>
        renameat2(oldDir, NullTerminated(oldName), newDir, NullTerminated(newName), flags) == 0 ? 0 : LastError;

    /// <summary>
    /// Hard-links the node's inode under a new name. linkat(fd, "", …, AT_EMPTY_PATH) needs
    /// CAP_DAC_READ_SEARCH; without it (ENOENT, see linkat(2)) the /proc/self/fd magic link with
    /// AT_SYMLINK_FOLLOW links the same inode.
    /// </summary>
    public static int LinkNode(SafeFileHandle node, SafeFileHandle newDir, ReadOnlySpan<byte> newName)
    {
        var name = NullTerminated(newName);
        if (linkat_fd(node, ""u8, newDir, name, AtEmptyPath) == 0)
        {
            return 0;
        }

        var errno = LastError;
        if (errno != 2 && errno != 1)
        {
            return errno;
        }

        var added = false;
        node.DangerousAddRef(ref added);
        try
        {
            return linkat_proc(AtFdCwd, ProcPath(node), newDir, name, AtSymlinkFollow) == 0 ? 0 : LastError;
        }
        finally
        {
            node.DangerousRelease();
        }
    }

    /// <summary>readlinkat(2) of a symlink node itself (empty path).</summary>
    public static int ReadLinkNode(SafeFileHandle node, out byte[] target)
    {
        var buffer = new byte[4096];
        fixed (byte* p = buffer)
        {
            var n = readlinkat(node, ""u8, p, (nuint)buffer.Length);
            target = n < 0 ? [] : buffer[..(int)n];
            return n < 0 ? LastError : 0;
        }
    }

    /// <summary>fchownat(fd, "", …, AT_EMPTY_PATH): changes the node itself, symlink or not.</summary>
    public static int ChownNode(SafeFileHandle node, uint uid, uint gid) =>
        fchownat(node, ""u8, uid, gid, AtEmptyPath) == 0 ? 0 : LastError;

    /// <summary>
    /// chmod through the node's /proc/self/fd link (fchmod refuses O_PATH descriptors). Callers
    /// use it only on regular files and directories, where following the link reaches the node.
    /// </summary>
    public static int ChmodNode(SafeFileHandle node, uint mode) =>
        WithProcPath(node, path => chmod(path, mode) == 0 ? 0 : LastError);

    /// <summary>
    /// utimensat(fd, "", …, AT_EMPTY_PATH). Times are (seconds, nanoseconds) or null to leave
    /// alone; <paramref name="atimeNow"/>/<paramref name="mtimeNow"/> ask for the current time.
    /// </summary>
    public static int SetTimesNode(SafeFileHandle node, (long S, uint Ns)? atime, bool atimeNow, (long S, uint Ns)? mtime, bool mtimeNow)
    {
        var times = stackalloc Timespec[2];
        times[0] = atimeNow ? new Timespec { Nanoseconds = UtimeNow } : atime is { } a ? new Timespec { Seconds = a.S, Nanoseconds = a.Ns } : new Timespec { Nanoseconds = UtimeOmit };
        times[1] = mtimeNow ? new Timespec { Nanoseconds = UtimeNow } : mtime is { } m ? new Timespec { Seconds = m.S, Nanoseconds = m.Ns } : new Timespec { Nanoseconds = UtimeOmit };
        return utimensat(node, ""u8, times, AtEmptyPath | AtSymlinkNoFollow) == 0 ? 0 : LastError;
    }

    public static long PRead(SafeFileHandle fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            return pread(fd, p, (nuint)buffer.Length, offset);
        }
    }

    public static long PWrite(SafeFileHandle fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            return pwrite(fd, p, (nuint)data.Length, offset);
        }
    }

    public static int FTruncate(SafeFileHandle fd, long size) => ftruncate(fd, size) == 0 ? 0 : LastError;

    public static int FSync(SafeFileHandle fd, bool dataOnly) => (dataOnly ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : LastError;

    public static int FAllocate(SafeFileHandle fd, int mode, long offset, long length) =>
        fallocate(fd, mode, offset, length) == 0 ? 0 : LastError;

    public static long LSeek(SafeFileHandle fd, long offset) => lseek(fd, offset, 0);

    /// <summary>getdents64(2) into the buffer; the byte count, or -1 and the errno.</summary>
    public static long GetDents64(SafeFileHandle dir, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return getdents64(dir, p, (nuint)buffer.Length);
        }
    }

    /// <summary>
    /// Extended attributes go through the node's /proc/self/fd link: the f*xattr calls refuse
    /// O_PATH descriptors. Callers use them only on regular files and directories (user.*
    /// attributes are not allowed on symlinks anyway, xattr(7)).
    /// </summary>
    public static int GetXattrNode(SafeFileHandle node, string name, out byte[] value)
    {
        byte[] result = [];
        var errno = WithProcPath(node, path =>
        {
            var buffer = new byte[65536];
            fixed (byte* p = buffer)
            {
                var n = getxattr(path, name, p, (nuint)buffer.Length);
                if (n < 0)
                {
                    return LastError;
                }

                result = buffer[..(int)n];
                return 0;
            }
        });
        value = result;
        return errno;
    }

    public static int SetXattrNode(SafeFileHandle node, string name, ReadOnlySpan<byte> value, int flags)
    {
        var copy = value.ToArray();
        return WithProcPath(node, path =>
        {
            fixed (byte* p = copy)
            {
                return setxattr(path, name, p, (nuint)copy.Length, flags) == 0 ? 0 : LastError;
            }
        });
    }

    public static int ListXattrNode(SafeFileHandle node, out byte[] names)
    {
        byte[] result = [];
        var errno = WithProcPath(node, path =>
        {
            var buffer = new byte[65536];
            fixed (byte* p = buffer)
            {
                var n = listxattr(path, p, (nuint)buffer.Length);
                if (n < 0)
                {
                    return LastError;
                }

                result = buffer[..(int)n];
                return 0;
            }
        });
        names = result;
        return errno;
    }

    public static int RemoveXattrNode(SafeFileHandle node, string name) =>
        WithProcPath(node, path => removexattr(path, name) == 0 ? 0 : LastError);

    private static int WithProcPath(SafeFileHandle node, Func<string, int> call)
    {
        var added = false;
        node.DangerousAddRef(ref added);
        try
        {
            return call(ProcPath(node));
        }
        finally
        {
            node.DangerousRelease();
        }
    }

    // Only called while the caller holds a reference on the handle, so the number stays ours.
    private static string ProcPath(SafeFileHandle node) =>
        "/proc/self/fd/" + ((int)node.DangerousGetHandle()).ToString(CultureInfo.InvariantCulture);

    // Names arrive as bytes (a FUSE name need not be UTF-8); the callers checked them for NUL.
    private static byte[] NullTerminated(ReadOnlySpan<byte> name)
    {
        var z = new byte[name.Length + 1];
        name.CopyTo(z);
        return z;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long syscall_openat2(long number, int dirfd, string path, OpenHow* how, nuint size);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat_cwd(int dirfd, string path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int openat(SafeFileHandle dirfd, byte[] path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int statx(SafeFileHandle dirfd, ReadOnlySpan<byte> path, int flags, uint mask, Statx* buf);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstatfs(SafeFileHandle fd, StatFs* buf);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mkdirat(SafeFileHandle dirfd, byte[] path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int symlinkat(byte[] target, SafeFileHandle dirfd, byte[] path);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unlinkat(SafeFileHandle dirfd, byte[] path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int renameat2(SafeFileHandle olddirfd, byte[] oldpath, SafeFileHandle newdirfd, byte[] newpath, uint flags);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true)]
    private static partial int linkat_fd(SafeFileHandle olddirfd, ReadOnlySpan<byte> oldpath, SafeFileHandle newdirfd, byte[] newpath, int flags);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int linkat_proc(int olddirfd, string oldpath, SafeFileHandle newdirfd, byte[] newpath, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readlinkat(SafeFileHandle dirfd, ReadOnlySpan<byte> path, byte* buf, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchownat(SafeFileHandle dirfd, ReadOnlySpan<byte> path, uint owner, uint group, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chmod(string path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int utimensat(SafeFileHandle dirfd, ReadOnlySpan<byte> path, Timespec* times, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(SafeFileHandle fd, byte* buf, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pwrite(SafeFileHandle fd, byte* buf, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ftruncate(SafeFileHandle fd, long length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(SafeFileHandle fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(SafeFileHandle fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(SafeFileHandle fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint getdents64(SafeFileHandle fd, byte* dirp, nuint count);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint listxattr(string path, byte* list, nuint size);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int removexattr(string path, string name);
}
