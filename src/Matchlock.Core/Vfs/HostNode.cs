using Microsoft.Win32.SafeHandles;

namespace Matchlock.Core.Vfs;

/// <summary>
/// A host file the guest's kernel knows: an <c>O_PATH|O_NOFOLLOW</c> descriptor of it, opened once
/// by name relative to its parent's descriptor. The descriptor keeps naming the same inode
/// whatever later happens to the path (rename, replacement by a symlink, deletion), which is what
/// makes the node table race-free. Owned by the node table, which disposes it on the last FORGET.
/// </summary>
internal sealed class HostNode(SafeFileHandle fd, uint fileType) : IDisposable
{
    public SafeFileHandle Fd { get; } = fd;

    /// <summary>The S_IFMT bits, fixed for the life of an inode.</summary>
    public uint FileType { get; } = fileType;

    public bool IsDirectory => FileType == VfsMode.Directory;

    public bool IsRegular => FileType == VfsMode.Regular;

    /// <summary>Whether user.* xattrs (and so the ownership record) can exist on it (xattr(7)).</summary>
    public bool TakesUserXattrs => FileType is VfsMode.Regular or VfsMode.Directory;

    public void Dispose() => Fd.Dispose();
}

/// <summary>An open host file: a real descriptor, reopened from the node's O_PATH one.</summary>
internal sealed class HostFileHandle(ulong node, SafeFileHandle fd) : IDisposable
{
    public ulong Node { get; } = node;

    public SafeFileHandle Fd { get; } = fd;

    public void Dispose() => Fd.Dispose();
}

/// <summary>
/// An open host directory: <c>openat(node, ".", O_RDONLY|O_DIRECTORY)</c>, read with getdents64.
/// Reads seek to the caller's offset first, so the lock keeps seek and read together.
/// </summary>
internal sealed class HostDirHandle(ulong node, SafeFileHandle fd) : IDisposable
{
    public ulong Node { get; } = node;

    public SafeFileHandle Fd { get; } = fd;

    /// <summary>Guards the descriptor's position between lseek and getdents64, and the batch below.</summary>
    public Lock Lock { get; } = new();

    /// <summary>The last getdents64 batch; entries from <see cref="Start"/> to <see cref="End"/> are not listed yet.</summary>
    public byte[] Buffer { get; } = new byte[32768];

    public int Start { get; set; }

    public int End { get; set; }

    /// <summary>The offset (d_off) a listing continuing the batch asks for; anything else seeks.</summary>
    public ulong NextOffset { get; set; } = ulong.MaxValue;

    /// <summary>Forgets the batch: the next listing seeks.</summary>
    public void Reset()
    {
        Start = End = 0;
        NextOffset = ulong.MaxValue;
    }

    public void Dispose() => Fd.Dispose();
}
