using System.Text;

namespace Matchlock.Core.Vfs;

/// <summary>An open file of the memory tree; the node stays readable after its last name goes.</summary>
internal sealed class MemoryFileHandle(ulong nodeId, MemoryNode node, int flags)
{
    public ulong NodeId { get; } = nodeId;

    public MemoryNode Node { get; } = node;

    public int Flags { get; } = flags;
}

/// <summary>An open directory: its entries as they were at OPENDIR, so offsets stay stable.</summary>
internal sealed class MemoryDirHandle(ulong nodeId, IReadOnlyList<(byte[] Name, MemoryNode Node)> entries)
{
    public ulong NodeId { get; } = nodeId;

    public IReadOnlyList<(byte[] Name, MemoryNode Node)> Entries { get; } = entries;
}

/// <summary>Files, directories and xattrs of the memory tree.</summary>
internal sealed partial class MemoryProvider
{
    public VfsResult<ulong> Open(ulong node, int flags)
    {
        lock (_lock)
        {
            if (!_nodes.TryGet(node, out var n))
            {
                return Errno.ENOENT;
            }

            return OpenLocked(node, n, flags);
        }
    }

    public VfsResult<VfsCreated> Create(ulong parent, ReadOnlySpan<byte> name, uint mode, int flags, VfsCaller caller)
    {
        lock (_lock)
        {
            var check = CheckName(parent, name, out var dir);
            if (check != Errno.None)
            {
                return check;
            }

            if (dir.Children.TryGetValue(Key(name), out var existing))
            {
                if ((flags & OpenFlags.Exclusive) != 0)
                {
                    return Errno.EEXIST;
                }

                var entry = Hand(existing);
                var opened = OpenLocked(entry.NodeId, existing, flags);
                if (!opened.IsOk)
                {
                    _nodes.Forget(entry.NodeId, 1);
                    return opened.Error;
                }

                return new VfsCreated(entry with { Attr = existing.Attr }, opened.Value);
            }

            var added = AddChild(parent, name, VfsMode.Regular | (mode & VfsMode.PermissionMask), caller);
            if (!added.IsOk)
            {
                return added.Error;
            }

            var created = Hand(added.Value);
            added.Value.OpenCount++;
            return new VfsCreated(created, _files.Add(new MemoryFileHandle(created.NodeId, added.Value, flags)));
        }
    }

    public VfsResult<int> Read(ulong node, ulong handle, long offset, Span<byte> buffer)
    {
        if (offset < 0)
        {
            return Errno.EINVAL;
        }

        lock (_lock)
        {
            if (!_files.TryGet(handle, out var open) || open.NodeId != node || (open.Flags & OpenFlags.AccessMask) == OpenFlags.WriteOnly)
            {
                return Errno.EBADF;
            }

            var n = open.Node;
            if (offset >= n.Length)
            {
                return 0;
            }

            var count = (int)Math.Min(buffer.Length, n.Length - offset);
            n.Data.AsSpan((int)offset, count).CopyTo(buffer);
            n.Atime = Now;
            return count;
        }
    }

    public VfsResult<int> Write(ulong node, ulong handle, long offset, ReadOnlySpan<byte> data)
    {
        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (offset < 0)
        {
            return Errno.EINVAL;
        }

        lock (_lock)
        {
            if (!_files.TryGet(handle, out var open) || open.NodeId != node || (open.Flags & OpenFlags.AccessMask) == OpenFlags.ReadOnly)
            {
                return Errno.EBADF;
            }

            var n = open.Node;
            if ((open.Flags & OpenFlags.Append) != 0)
            {
                offset = n.Length;
            }

            var end = offset + data.Length;
            if (end > n.Length)
            {
                var e = Resize(n, (ulong)end);
                if (e != Errno.None)
                {
                    return e;
                }
            }

            data.CopyTo(n.Data.AsSpan((int)offset));

            // A write by anyone drops setuid, and setgid with group-execute (write(2), as the kernel does).
            var clear = VfsMode.SetUid | ((n.Mode & 0x8) != 0 ? VfsMode.SetGid : 0);
            n.Mode &= ~clear;
            n.Mtime = n.Ctime = Now;
            return data.Length;
        }
    }

    public Errno Flush(ulong node, ulong handle) =>
        _files.TryGet(handle, out var open) && open.NodeId == node ? Errno.None : Errno.EBADF;

    public Errno Fsync(ulong node, ulong handle, bool dataOnly) =>
        _files.TryGet(handle, out var open) && open.NodeId == node ? Errno.None : Errno.EBADF;

    public Errno Release(ulong node, ulong handle)
    {
        lock (_lock)
        {
            if (!_files.TryRemove(handle, out var open))
            {
                return Errno.EBADF;
            }

            open.Node.OpenCount--;
            FreeIfUnreferenced(open.Node);
            return Errno.None;
        }
    }

    /// <summary>Mode 0 (allocate, extending the size) and FALLOC_FL_KEEP_SIZE (1); others EOPNOTSUPP.</summary>
    public Errno Fallocate(ulong node, ulong handle, int mode, long offset, long length)
    {
        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (offset < 0 || length <= 0)
        {
            return Errno.EINVAL;
        }

        if (mode is not (0 or 1))
        {
            return Errno.EOPNOTSUPP;
        }

        lock (_lock)
        {
            if (!_files.TryGet(handle, out var open) || open.NodeId != node)
            {
                return Errno.EBADF;
            }

            var end = offset + length;
            if (mode == 1 || end <= open.Node.Length)
            {
                return end > int.MaxValue ? Errno.EFBIG : _usedBytes + Math.Max(0, end - open.Node.Length) > _capacityBytes ? Errno.ENOSPC : Errno.None;
            }

            var e = Resize(open.Node, (ulong)end);
            if (e == Errno.None)
            {
                open.Node.Ctime = Now;
            }

            return e;
        }
    }

    public VfsResult<ulong> OpenDir(ulong node)
    {
        lock (_lock)
        {
            if (!_nodes.TryGet(node, out var n))
            {
                return Errno.ENOENT;
            }

            if (!n.IsDirectory)
            {
                return Errno.ENOTDIR;
            }

            List<(byte[], MemoryNode)> entries = [("."u8.ToArray(), n), (".."u8.ToArray(), n.Parent ?? n)];
            entries.AddRange(n.Children.Select(c => (NameBytes(c.Key), c.Value)));
            return _dirs.Add(new MemoryDirHandle(node, entries));
        }
    }

    /// <summary>Offsets are positions in the OPENDIR snapshot: entry i continues from i + 1.</summary>
    public Errno ReadDir(ulong node, ulong handle, ulong offset, bool plus, VfsDirFiller fill)
    {
        if (!_dirs.TryGet(handle, out var dir) || dir.NodeId != node)
        {
            return Errno.EBADF;
        }

        for (var i = offset; i < (ulong)dir.Entries.Count; i++)
        {
            var (name, child) = dir.Entries[(int)i];
            VfsDirEntry entry;
            var lookedUp = false;
            lock (_lock)
            {
                var attr = child.Attr;
                entry = new VfsDirEntry(name, i + 1, VfsMode.DirentType(attr.Mode), attr.Ino, null);
                if (plus && i >= 2)
                {
                    entry = entry with { Entry = Hand(child) };
                    lookedUp = true;
                }
            }

            if (!fill(entry))
            {
                if (lookedUp)
                {
                    _nodes.Forget(entry.Entry!.Value.NodeId, 1);
                }

                break;
            }
        }

        return Errno.None;
    }

    public Errno ReleaseDir(ulong node, ulong handle) => _dirs.TryRemove(handle, out _) ? Errno.None : Errno.EBADF;

    public VfsResult<byte[]> GetXattr(ulong node, string name)
    {
        lock (_lock)
        {
            if (!_nodes.TryGet(node, out var n))
            {
                return Errno.ENOENT;
            }

            return n.Xattrs.TryGetValue(name, out var value) ? value.ToArray() : Errno.ENODATA;
        }
    }

    /// <summary>user.* only, on regular files and directories, as on the host (xattr(7)).</summary>
    public Errno SetXattr(ulong node, string name, ReadOnlySpan<byte> value, int flags)
    {
        if (value.Length > 65536)
        {
            return Errno.E2BIG;
        }

        var copy = value.ToArray();
        lock (_lock)
        {
            var check = CheckXattrChange(node, name, out var n);
            if (check != Errno.None)
            {
                return check;
            }

            var exists = n.Xattrs.ContainsKey(name);
            if ((flags & 1) != 0 && exists)
            {
                return Errno.EEXIST;
            }

            if ((flags & 2) != 0 && !exists)
            {
                return Errno.ENODATA;
            }

            n.Xattrs[name] = copy;
            n.Ctime = Now;
            return Errno.None;
        }
    }

    public VfsResult<IReadOnlyList<string>> ListXattr(ulong node)
    {
        lock (_lock)
        {
            return _nodes.TryGet(node, out var n) ? n.Xattrs.Keys.Order(StringComparer.Ordinal).ToArray() : Errno.ENOENT;
        }
    }

    public Errno RemoveXattr(ulong node, string name)
    {
        lock (_lock)
        {
            var check = CheckXattrChange(node, name, out var n);
            if (check != Errno.None)
            {
                return check;
            }

            if (!n.Xattrs.Remove(name))
            {
                return Errno.ENODATA;
            }

            n.Ctime = Now;
            return Errno.None;
        }
    }

    /// <summary>Caller holds the lock.</summary>
    private Errno CheckXattrChange(ulong node, string name, out MemoryNode n)
    {
        if (!_nodes.TryGet(node, out n))
        {
            return Errno.ENOENT;
        }

        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (!name.StartsWith("user.", StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(name) > 255)
        {
            return Errno.EOPNOTSUPP;
        }

        return n.FileType is VfsMode.Regular or VfsMode.Directory ? Errno.None : Errno.EPERM;
    }

    /// <summary>Caller holds the lock.</summary>
    private VfsResult<ulong> OpenLocked(ulong id, MemoryNode n, int flags)
    {
        if (n.IsDirectory)
        {
            return Errno.EISDIR;
        }

        if (n.FileType != VfsMode.Regular)
        {
            return n.FileType == VfsMode.Symlink ? Errno.ELOOP : Errno.EACCES;
        }

        if (ReadOnly && OpenFlags.Writes(flags))
        {
            return Errno.EROFS;
        }

        if ((flags & OpenFlags.Truncate) != 0 && (flags & OpenFlags.AccessMask) != OpenFlags.ReadOnly)
        {
            var e = Resize(n, 0);
            if (e != Errno.None)
            {
                return e;
            }

            n.Mtime = n.Ctime = Now;
        }

        n.OpenCount++;
        return _files.Add(new MemoryFileHandle(id, n, flags));
    }
}
