using System.Text;

namespace Matchlock.Core.Vfs;

/// <summary>
/// A complete POSIX tree in the owner's memory (the <c>memory</c> mount type, and later the
/// overlay's upper layer). Same contract as <see cref="HostFsProvider"/>: the guest's owners and
/// modes are kept as given, names are checked the same way, and device nodes are refused (FIFOs
/// and sockets are allowed: the guest's kernel serves them, nothing on the host does). The tree is
/// capped at <c>capacityBytes</c> of file data so a guest cannot exhaust the owner's memory.
/// </summary>
/// <remarks>One lock guards the whole tree: operations are short and memory-only.</remarks>
internal sealed partial class MemoryProvider : IVfsProvider
{
    // Guards every MemoryNode, _usedBytes and _nextIno.
    private readonly Lock _lock = new();
    private readonly NodeTable<MemoryNode, MemoryNode> _nodes;
    private readonly HandleTable<MemoryFileHandle> _files = new();
    private readonly HandleTable<MemoryDirHandle> _dirs = new();
    private readonly TimeProvider _time;
    private readonly long _capacityBytes;
    private long _usedBytes;
    private ulong _nextIno = IVfsProvider.RootId + 1;

    /// <param name="capacityBytes">The most file data the tree may hold; writes past it get ENOSPC.</param>
    /// <param name="readOnly">Refuse every change with EROFS (a fixed empty tree; for tests and symmetry).</param>
    /// <param name="rootMode">Permission bits of the root directory.</param>
    /// <param name="time">The clock for timestamps.</param>
    public MemoryProvider(long capacityBytes = 256L << 20, bool readOnly = false, uint rootMode = 0x1ED, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        _capacityBytes = capacityBytes;
        _time = time ?? TimeProvider.System;
        ReadOnly = readOnly;
        var root = new MemoryNode(IVfsProvider.RootId, VfsMode.Directory | (rootMode & VfsMode.PermissionMask), 0, 0, Now) { Nlink = 2 };
        root.Parent = root;
        _nodes = new(root, root);
    }

    public bool ReadOnly { get; }

    /// <summary>Nodes the kernel currently holds, the root included.</summary>
    internal int NodeCount => _nodes.Count;

    /// <summary>Bytes of file data held.</summary>
    internal long UsedBytes
    {
        get
        {
            lock (_lock)
            {
                return _usedBytes;
            }
        }
    }

    private VfsTime Now => VfsTime.FromDateTime(_time.GetUtcNow());

    public VfsResult<VfsEntry> Lookup(ulong parent, ReadOnlySpan<byte> name)
    {
        if (VfsName.Check(name) is var bad && bad != Errno.None)
        {
            return bad;
        }

        lock (_lock)
        {
            var dir = Directory(parent, out var e);
            if (dir is null)
            {
                return e;
            }

            return dir.Children.TryGetValue(Key(name), out var child) ? Hand(child) : Errno.ENOENT;
        }
    }

    public void Forget(ulong node, ulong lookups) => _nodes.Forget(node, lookups);

    public VfsResult<VfsAttr> GetAttr(ulong node)
    {
        lock (_lock)
        {
            return _nodes.TryGet(node, out var n) ? n.Attr : Errno.ENOENT;
        }
    }

    public VfsResult<VfsAttr> SetAttr(ulong node, VfsSetAttr changes)
    {
        lock (_lock)
        {
            if (!_nodes.TryGet(node, out var n))
            {
                return Errno.ENOENT;
            }

            if (ReadOnly)
            {
                return Errno.EROFS;
            }

            if (changes.Mode is { } mode)
            {
                if (n.FileType == VfsMode.Symlink)
                {
                    return Errno.EOPNOTSUPP;
                }

                n.Mode = n.FileType | (mode & VfsMode.PermissionMask);
            }

            n.Uid = changes.Uid ?? n.Uid;
            n.Gid = changes.Gid ?? n.Gid;
            if (changes.Size is { } size)
            {
                if (n.IsDirectory)
                {
                    return Errno.EISDIR;
                }

                if (n.FileType != VfsMode.Regular)
                {
                    return Errno.EINVAL;
                }

                var e = Resize(n, size);
                if (e != Errno.None)
                {
                    return e;
                }

                n.Mtime = Now;
            }

            n.Atime = changes.AtimeNow ? Now : changes.Atime ?? n.Atime;
            n.Mtime = changes.MtimeNow ? Now : changes.Mtime ?? n.Mtime;
            n.Ctime = Now;
            return n.Attr;
        }
    }

    public VfsResult<byte[]> ReadLink(ulong node)
    {
        lock (_lock)
        {
            if (!_nodes.TryGet(node, out var n))
            {
                return Errno.ENOENT;
            }

            return n.FileType == VfsMode.Symlink ? n.Target.ToArray() : Errno.EINVAL;
        }
    }

    public VfsResult<VfsStatFs> StatFs(ulong node)
    {
        lock (_lock)
        {
            const uint block = 4096;
            var total = (ulong)_capacityBytes / block;
            var free = (ulong)Math.Max(0, _capacityBytes - _usedBytes) / block;
            return new VfsStatFs(total, free, free, 1UL << 20, 1UL << 20, block, VfsName.MaxLength, block);
        }
    }

    public void Dispose()
    {
        _files.Dispose();
        _dirs.Dispose();
        _nodes.Dispose();
    }

    // Latin-1 maps each byte to the char of the same value, so names keep their exact bytes.
    private static string Key(ReadOnlySpan<byte> name) => Encoding.Latin1.GetString(name);

    private static byte[] NameBytes(string key) => Encoding.Latin1.GetBytes(key);

    /// <summary>Counts one kernel lookup of a node and describes it. Caller holds the lock.</summary>
    private VfsEntry Hand(MemoryNode node)
    {
        var (id, _) = _nodes.Acquire(node, node);
        return new VfsEntry(id, node.Attr);
    }

    /// <summary>The directory behind a node id, or null with ENOENT/ENOTDIR. Caller holds the lock.</summary>
    private MemoryNode? Directory(ulong id, out Errno error)
    {
        if (!_nodes.TryGet(id, out var n))
        {
            error = Errno.ENOENT;
            return null;
        }

        // A directory removed while the kernel still holds it takes no new names.
        if (!n.IsDirectory || n.Nlink == 0)
        {
            error = n.IsDirectory ? Errno.ENOENT : Errno.ENOTDIR;
            return null;
        }

        error = Errno.None;
        return n;
    }

    /// <summary>Sets a regular file's length, charging the change against the capacity. Caller holds the lock.</summary>
    private Errno Resize(MemoryNode n, ulong size)
    {
        if (size > int.MaxValue)
        {
            return Errno.EFBIG;
        }

        var delta = (long)size - n.Length;
        if (delta > 0 && _usedBytes + delta > _capacityBytes)
        {
            return Errno.ENOSPC;
        }

        if ((long)size > n.Data.Length)
        {
            var grown = new byte[Math.Min(int.MaxValue, Math.Max((long)size, (long)n.Data.Length * 2))];
            n.Data.AsSpan(0, (int)n.Length).CopyTo(grown);
            n.Data = grown;
        }
        else if ((long)size < n.Length)
        {
            n.Data.AsSpan((int)size, (int)(n.Length - (long)size)).Clear();
        }

        _usedBytes += delta;
        n.Length = (long)size;
        return Errno.None;
    }
}
