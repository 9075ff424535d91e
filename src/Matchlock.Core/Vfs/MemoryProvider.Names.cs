namespace Matchlock.Core.Vfs;

/// <summary>Operations that add, remove or move names in the memory tree.</summary>
internal sealed partial class MemoryProvider
{
    public VfsResult<VfsEntry> Mknod(ulong parent, ReadOnlySpan<byte> name, uint mode, uint rdev, VfsCaller caller)
    {
        var type = mode & VfsMode.TypeMask;
        if (type is VfsMode.Char or VfsMode.Block)
        {
            return ReadOnly ? Errno.EROFS : Errno.EPERM;
        }

        if (type is not (VfsMode.Regular or VfsMode.Fifo or VfsMode.Socket or 0))
        {
            return Errno.EINVAL;
        }

        lock (_lock)
        {
            var added = AddChild(parent, name, (type == 0 ? VfsMode.Regular : type) | (mode & VfsMode.PermissionMask), caller);
            return added.IsOk ? Hand(added.Value) : added.Error;
        }
    }

    public VfsResult<VfsEntry> Mkdir(ulong parent, ReadOnlySpan<byte> name, uint mode, VfsCaller caller)
    {
        lock (_lock)
        {
            var added = AddChild(parent, name, VfsMode.Directory | (mode & VfsMode.PermissionMask), caller);
            return added.IsOk ? Hand(added.Value) : added.Error;
        }
    }

    public VfsResult<VfsEntry> Symlink(ulong parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, VfsCaller caller)
    {
        if (target.IsEmpty)
        {
            return Errno.ENOENT;
        }

        if (target.Length >= 4096)
        {
            return Errno.ENAMETOOLONG;
        }

        if (target.Contains((byte)0))
        {
            return Errno.EINVAL;
        }

        var text = target.ToArray();
        lock (_lock)
        {
            var added = AddChild(parent, name, VfsMode.Symlink | 0x1FF, caller);
            if (!added.IsOk)
            {
                return added.Error;
            }

            added.Value.Target = text;
            return Hand(added.Value);
        }
    }

    public VfsResult<VfsEntry> Link(ulong node, ulong newParent, ReadOnlySpan<byte> newName)
    {
        lock (_lock)
        {
            var check = CheckNewName(newParent, newName, out var dir);
            if (check != Errno.None)
            {
                return check;
            }

            if (!_nodes.TryGet(node, out var n))
            {
                return Errno.ENOENT;
            }

            if (n.IsDirectory)
            {
                return Errno.EPERM;
            }

            if (n.Nlink == 0)
            {
                return Errno.ENOENT;
            }

            dir.Children[Key(newName)] = n;
            n.Nlink++;
            n.Ctime = dir.Mtime = dir.Ctime = Now;
            return Hand(n);
        }
    }

    public Errno Unlink(ulong parent, ReadOnlySpan<byte> name) => Remove(parent, name, directory: false);

    public Errno Rmdir(ulong parent, ReadOnlySpan<byte> name) => Remove(parent, name, directory: true);

    public Errno Rename(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, VfsRenameFlags flags)
    {
        if ((flags & ~(VfsRenameFlags.NoReplace | VfsRenameFlags.Exchange)) != 0
            || flags == (VfsRenameFlags.NoReplace | VfsRenameFlags.Exchange))
        {
            return Errno.EINVAL;
        }

        lock (_lock)
        {
            var check = CheckName(parent, name, out var from);
            if (check != Errno.None)
            {
                return check;
            }

            check = CheckName(newParent, newName, out var to);
            if (check != Errno.None)
            {
                return check;
            }

            string key = Key(name), newKey = Key(newName);
            if (!from.Children.TryGetValue(key, out var source))
            {
                return Errno.ENOENT;
            }

            to.Children.TryGetValue(newKey, out var target);
            if (ReferenceEquals(source, target))
            {
                return Errno.None; // Two names of one inode: rename(2) does nothing.
            }

            // A directory cannot move below itself; neither can the target in an exchange.
            if ((source.IsDirectory && IsAncestorOrSelf(source, to)) || (target is { IsDirectory: true } && IsAncestorOrSelf(target, from)))
            {
                return Errno.EINVAL;
            }

            if (flags == VfsRenameFlags.Exchange)
            {
                if (target is null)
                {
                    return Errno.ENOENT;
                }

                from.Children[key] = target;
                to.Children[newKey] = source;
                Reparent(target, from, to);
                Reparent(source, to, from);
            }
            else
            {
                if (target is not null)
                {
                    if (flags == VfsRenameFlags.NoReplace)
                    {
                        return Errno.EEXIST;
                    }

                    var fit = source.IsDirectory
                        ? target.IsDirectory ? target.Children.Count == 0 ? Errno.None : Errno.ENOTEMPTY : Errno.ENOTDIR
                        : target.IsDirectory ? Errno.EISDIR : Errno.None;
                    if (fit != Errno.None)
                    {
                        return fit;
                    }

                    Unlinked(to, target);
                }

                from.Children.Remove(key);
                to.Children[newKey] = source;
                Reparent(source, to, from);
            }

            source.Ctime = from.Mtime = from.Ctime = to.Mtime = to.Ctime = Now;
            return Errno.None;
        }
    }

    private static bool IsAncestorOrSelf(MemoryNode candidate, MemoryNode node)
    {
        for (var n = node; ; n = n.Parent!)
        {
            if (ReferenceEquals(n, candidate))
            {
                return true;
            }

            if (ReferenceEquals(n.Parent, n))
            {
                return false;
            }
        }
    }

    /// <summary>Moves a directory's ".." (and the link counts it carries) from one parent to another.</summary>
    private static void Reparent(MemoryNode moved, MemoryNode newParent, MemoryNode oldParent)
    {
        if (!moved.IsDirectory || ReferenceEquals(newParent, oldParent))
        {
            return;
        }

        moved.Parent = newParent;
        newParent.Nlink++;
        oldParent.Nlink--;
    }

    private Errno Remove(ulong parent, ReadOnlySpan<byte> name, bool directory)
    {
        lock (_lock)
        {
            var check = CheckName(parent, name, out var dir);
            if (check != Errno.None)
            {
                return check;
            }

            var key = Key(name);
            if (!dir.Children.TryGetValue(key, out var child))
            {
                return Errno.ENOENT;
            }

            if (directory != child.IsDirectory)
            {
                return directory ? Errno.ENOTDIR : Errno.EISDIR;
            }

            if (directory && child.Children.Count != 0)
            {
                return Errno.ENOTEMPTY;
            }

            dir.Children.Remove(key);
            Unlinked(dir, child);
            dir.Mtime = dir.Ctime = Now;
            return Errno.None;
        }
    }

    /// <summary>Drops one name of a node (already out of its directory). Caller holds the lock.</summary>
    private void Unlinked(MemoryNode dir, MemoryNode child)
    {
        if (child.IsDirectory)
        {
            child.Nlink = 0;
            dir.Nlink--;
        }
        else
        {
            child.Nlink--;
        }

        child.Ctime = Now;
        FreeIfUnreferenced(child);
    }

    /// <summary>Gives back the data of a file nothing names or holds open. Caller holds the lock.</summary>
    private void FreeIfUnreferenced(MemoryNode n)
    {
        if (n.Nlink == 0 && n.OpenCount == 0 && n.Length > 0)
        {
            _usedBytes -= n.Length;
            n.Length = 0;
            n.Data = [];
        }
    }

    /// <summary>Read-only, name and parent checks for an operation on an existing name. Caller holds the lock.</summary>
    private Errno CheckName(ulong parent, ReadOnlySpan<byte> name, out MemoryNode dir)
    {
        dir = null!;
        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (VfsName.Check(name) is var bad && bad != Errno.None)
        {
            return bad;
        }

        var found = Directory(parent, out var e);
        if (found is null)
        {
            return e;
        }

        dir = found;
        return Errno.None;
    }

    /// <summary>As <see cref="CheckName"/>, and the name must be free. Caller holds the lock.</summary>
    private Errno CheckNewName(ulong parent, ReadOnlySpan<byte> name, out MemoryNode dir)
    {
        var e = CheckName(parent, name, out dir);
        return e != Errno.None ? e : dir.Children.ContainsKey(Key(name)) ? Errno.EEXIST : Errno.None;
    }

    /// <summary>A new node under a name, owned by the caller. Caller holds the lock.</summary>
    private VfsResult<MemoryNode> AddChild(ulong parent, ReadOnlySpan<byte> name, uint mode, VfsCaller caller)
    {
        var e = CheckNewName(parent, name, out var dir);
        if (e != Errno.None)
        {
            return e;
        }

        var now = Now;
        var node = new MemoryNode(_nextIno++, mode, caller.Uid, caller.Gid, now) { Nlink = 1 };
        if (node.IsDirectory)
        {
            node.Nlink = 2;
            node.Parent = dir;
            dir.Nlink++;
        }

        dir.Children[Key(name)] = node;
        dir.Mtime = dir.Ctime = now;
        return node;
    }
}
