namespace Matchlock.Core.Vfs;

/// <summary>
/// One inode of a <see cref="MemoryProvider"/> tree. Every field is guarded by the provider's
/// lock. A node lives while a name or the kernel (node table, open handle) refers to it.
/// </summary>
internal sealed class MemoryNode(ulong ino, uint mode, uint uid, uint gid, VfsTime now)
{
    public ulong Ino { get; } = ino;

    public uint Mode { get; set; } = mode;

    public uint Uid { get; set; } = uid;

    public uint Gid { get; set; } = gid;

    public uint Rdev { get; set; }

    /// <summary>Names referring to this node (for directories: 2 plus subdirectories).</summary>
    public uint Nlink { get; set; }

    public VfsTime Atime { get; set; } = now;

    public VfsTime Mtime { get; set; } = now;

    public VfsTime Ctime { get; set; } = now;

    /// <summary>Regular file contents; the first <see cref="Length"/> bytes are the file.</summary>
    public byte[] Data { get; set; } = [];

    public long Length { get; set; }

    /// <summary>Symlink target text.</summary>
    public byte[] Target { get; set; } = [];

    /// <summary>
    /// Directory entries, keyed by the name's bytes as Latin-1 text (one char per byte, so any
    /// byte string round-trips and compares ordinally).
    /// </summary>
    public Dictionary<string, MemoryNode> Children { get; } = new(StringComparer.Ordinal);

    /// <summary>The containing directory (directories only; the root is its own parent).</summary>
    public MemoryNode? Parent { get; set; }

    public Dictionary<string, byte[]> Xattrs { get; } = new(StringComparer.Ordinal);

    /// <summary>Open file handles on this node; its data is freed when this and <see cref="Nlink"/> are both zero.</summary>
    public int OpenCount { get; set; }

    public uint FileType => Mode & VfsMode.TypeMask;

    public bool IsDirectory => FileType == VfsMode.Directory;

    public VfsAttr Attr => new(
        Ino,
        (ulong)(IsDirectory ? 4096 : FileType == VfsMode.Symlink ? Target.Length : Length),
        ((ulong)Length + 511) / 512,
        Atime,
        Mtime,
        Ctime,
        Mode,
        Nlink,
        Uid,
        Gid,
        Rdev,
        4096);
}
