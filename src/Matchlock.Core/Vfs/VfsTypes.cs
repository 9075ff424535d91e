namespace Matchlock.Core.Vfs;

/// <summary>A timestamp as the kernel keeps it: seconds since the epoch and nanoseconds.</summary>
internal readonly record struct VfsTime(long Seconds, uint Nanoseconds)
{
    public static VfsTime FromDateTime(DateTimeOffset time)
    {
        var ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        return new VfsTime(seconds, (uint)(rest * 100));
    }
}

/// <summary>
/// A node's attributes as the guest sees them (the fields of FUSE's <c>fuse_attr</c>).
/// <see cref="Ino"/> is the inode number the guest reports (the host's st_ino for host-backed
/// nodes), not the FUSE node id. <see cref="Mode"/> holds the file type and the permission bits.
/// </summary>
internal readonly record struct VfsAttr(
    ulong Ino,
    ulong Size,
    ulong Blocks,
    VfsTime Atime,
    VfsTime Mtime,
    VfsTime Ctime,
    uint Mode,
    uint Nlink,
    uint Uid,
    uint Gid,
    uint Rdev,
    uint BlockSize)
{
    public uint FileType => Mode & VfsMode.TypeMask;
}

/// <summary>
/// A node handed to the kernel (a FUSE <c>entry_out</c>): each one the provider returns counts as
/// one lookup, which the kernel later gives back with FORGET.
/// </summary>
internal readonly record struct VfsEntry(ulong NodeId, VfsAttr Attr);

/// <summary>
/// One directory entry. <see cref="Offset"/> is the cookie to pass back to continue after this
/// entry. For readdirplus <see cref="Entry"/> is the looked-up node (one lookup each), absent for
/// <c>.</c> and <c>..</c>, which the kernel does not look up.
/// </summary>
internal readonly record struct VfsDirEntry(byte[] Name, ulong Offset, uint Type, ulong Ino, VfsEntry? Entry);

/// <summary>Filesystem totals (a FUSE <c>statfs_out</c>).</summary>
internal readonly record struct VfsStatFs(
    ulong Blocks,
    ulong BlocksFree,
    ulong BlocksAvailable,
    ulong Files,
    ulong FilesFree,
    uint BlockSize,
    uint NameLength,
    uint FragmentSize);

/// <summary>The guest credentials a request arrives with (FUSE's <c>fuse_in_header</c> uid/gid).</summary>
internal readonly record struct VfsCaller(uint Uid, uint Gid)
{
    public static VfsCaller Root => new(0, 0);
}

/// <summary>
/// The changes of one SETATTR: each field null when unchanged. <see cref="AtimeNow"/> and
/// <see cref="MtimeNow"/> stand for FATTR_ATIME_NOW/FATTR_MTIME_NOW (the host's clock).
/// <see cref="Handle"/> is the open file handle the kernel names for ftruncate, if any.
/// </summary>
internal sealed record VfsSetAttr
{
    public uint? Mode { get; init; }

    public uint? Uid { get; init; }

    public uint? Gid { get; init; }

    public ulong? Size { get; init; }

    public VfsTime? Atime { get; init; }

    public bool AtimeNow { get; init; }

    public VfsTime? Mtime { get; init; }

    public bool MtimeNow { get; init; }

    public ulong? Handle { get; init; }

    public bool ChangesTimes => Atime is not null || AtimeNow || Mtime is not null || MtimeNow;
}

/// <summary>renameat2(2) flags, as FUSE_RENAME2 carries them.</summary>
[Flags]
internal enum VfsRenameFlags : uint
{
    None = 0,

    /// <summary>RENAME_NOREPLACE: fail with EEXIST rather than replace the target.</summary>
    NoReplace = 1,

    /// <summary>RENAME_EXCHANGE: swap the two names atomically; both must exist.</summary>
    Exchange = 2,

    /// <summary>RENAME_WHITEOUT: overlayfs-internal; refused with EINVAL by every provider.</summary>
    Whiteout = 4,
}

/// <summary>st_mode bits used by the providers (inode(7)).</summary>
internal static class VfsMode
{
    public const uint TypeMask = 0xF000;
    public const uint Socket = 0xC000;
    public const uint Symlink = 0xA000;
    public const uint Regular = 0x8000;
    public const uint Block = 0x6000;
    public const uint Directory = 0x4000;
    public const uint Char = 0x2000;
    public const uint Fifo = 0x1000;
    public const uint SetUid = 0x800;
    public const uint SetGid = 0x400;
    public const uint Sticky = 0x200;

    /// <summary>Permission bits plus setuid, setgid and sticky.</summary>
    public const uint PermissionMask = 0xFFF;

    /// <summary>The d_type of a directory entry for a mode (dirent's DT_* = mode type >> 12).</summary>
    public static uint DirentType(uint mode) => (mode & TypeMask) >> 12;
}

/// <summary>open(2) flags the providers look at (x86_64/arm64 values; FUSE passes the guest's flags).</summary>
internal static class OpenFlags
{
    public const int AccessMask = 3;
    public const int ReadOnly = 0;
    public const int WriteOnly = 1;
    public const int ReadWrite = 2;
    public const int Create = 0x40;
    public const int Exclusive = 0x80;
    public const int Truncate = 0x200;
    public const int Append = 0x400;

    /// <summary>Whether an open with these flags can change the file (write access or O_TRUNC).</summary>
    public static bool Writes(int flags) => (flags & AccessMask) != ReadOnly || (flags & Truncate) != 0;
}
