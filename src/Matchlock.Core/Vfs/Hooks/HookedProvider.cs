namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// A provider with the sandbox's hooks in front of it (docs/VFS.md "Hooks and events"): each
/// operation is named (<see cref="VfsOps"/>), given the guest path the host computed
/// (<see cref="PathTracker"/>), checked before it reaches <paramref name="inner"/> (refused:
/// EPERM), and reported after it succeeded. Operations that change a file's content are also
/// checked as <c>write</c> — truncation (SETATTR size, or an open with O_TRUNC) and fallocate —
/// and a rename or link onto a name checks that name as well, so no other operation gets around a
/// rule that protects a file's content. Only mounts with interception are wrapped: without it the
/// provider is served directly.
/// </summary>
internal sealed class HookedProvider(IVfsProvider inner, string mountPoint, VfsHookEngine engine, (string HostName, string GuestPath)? singleFile = null) : IVfsProvider
{
    private readonly PathTracker _paths = new(mountPoint, singleFile);

    public bool ReadOnly => inner.ReadOnly;

    /// <summary>Nodes whose names the hook layer holds; for tests.</summary>
    internal int TrackedNodes => _paths.Count;

    public VfsResult<VfsEntry> Lookup(ulong parent, ReadOnlySpan<byte> name)
    {
        var path = NeedPath(VfsOps.Stat) ? _paths.PathOf(parent, name) : null;
        if (Refuse(VfsOps.Stat, path, null, Caller) is { } refused)
        {
            return refused;
        }

        var result = inner.Lookup(parent, name);
        if (result.IsOk)
        {
            _paths.Added(parent, name, result.Value.NodeId);
            Report(VfsOps.Stat, path, result.Value.Attr, Caller); // path is known whenever something observes
        }

        return result;
    }

    public void Forget(ulong node, ulong lookups)
    {
        _paths.Forget(node, lookups);
        inner.Forget(node, lookups);
    }

    public VfsResult<VfsAttr> GetAttr(ulong node)
    {
        if (Refuse(VfsOps.Stat, node, Caller) is { } refused)
        {
            return refused;
        }

        var result = inner.GetAttr(node);
        if (result.IsOk)
        {
            Report(VfsOps.Stat, node, result.Value, Caller);
        }

        return result;
    }

    public VfsResult<VfsAttr> SetAttr(ulong node, VfsSetAttr changes)
    {
        var ops = new List<string>(4);
        if (changes.Mode is not null)
        {
            ops.Add(VfsOps.Chmod);
        }

        if (changes.Uid is not null || changes.Gid is not null)
        {
            ops.Add(VfsOps.Chown);
        }

        if (changes.Size is not null)
        {
            ops.Add(VfsOps.Truncate);
            ops.Add(VfsOps.Write);
        }

        if (changes.ChangesTimes)
        {
            ops.Add(VfsOps.Utimes);
        }

        foreach (var op in ops)
        {
            if (Refuse(op, node, Caller) is { } refused)
            {
                return refused;
            }
        }

        var result = inner.SetAttr(node, changes);
        if (result.IsOk)
        {
            foreach (var op in ops.Where(o => o != VfsOps.Write))
            {
                Report(op, node, result.Value, Caller);
            }
        }

        return result;
    }

    public VfsResult<byte[]> ReadLink(ulong node) => Simple(VfsOps.ReadLink, node, () => inner.ReadLink(node));

    public VfsResult<VfsEntry> Mknod(ulong parent, ReadOnlySpan<byte> name, uint mode, uint rdev, VfsCaller caller)
    {
        var path = _paths.PathOf(parent, name);
        if (Refuse(VfsOps.Create, path, null, caller) is { } refused)
        {
            return refused;
        }

        return Added(VfsOps.Create, parent, name, path, caller, inner.Mknod(parent, name, mode, rdev, caller));
    }

    public VfsResult<VfsEntry> Mkdir(ulong parent, ReadOnlySpan<byte> name, uint mode, VfsCaller caller)
    {
        var path = _paths.PathOf(parent, name);
        if (Refuse(VfsOps.Mkdir, path, null, caller) is { } refused)
        {
            return refused;
        }

        return Added(VfsOps.Mkdir, parent, name, path, caller, inner.Mkdir(parent, name, mode, caller));
    }

    public VfsResult<VfsEntry> Symlink(ulong parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, VfsCaller caller)
    {
        var path = _paths.PathOf(parent, name);
        if (Refuse(VfsOps.Symlink, path, null, caller) is { } refused)
        {
            return refused;
        }

        return Added(VfsOps.Symlink, parent, name, path, caller, inner.Symlink(parent, name, target, caller));
    }

    public VfsResult<VfsEntry> Link(ulong node, ulong newParent, ReadOnlySpan<byte> newName)
    {
        var path = _paths.PathOf(node);
        var newPath = _paths.PathOf(newParent, newName);
        if ((Refuse(VfsOps.Link, node, Caller) ?? Refuse(VfsOps.Link, newPath, null, Caller) ?? Refuse(VfsOps.Create, newPath, null, Caller)) is { } refused)
        {
            return refused;
        }

        var result = inner.Link(node, newParent, newName);
        if (result.IsOk)
        {
            _paths.Added(newParent, newName, result.Value.NodeId);
            Report(VfsOps.Link, path, result.Value.Attr, Caller, newPath: newPath);
        }

        return result;
    }

    public Errno Unlink(ulong parent, ReadOnlySpan<byte> name) => Removal(parent, name, inner.Unlink);

    public Errno Rmdir(ulong parent, ReadOnlySpan<byte> name) => Removal(parent, name, inner.Rmdir);

    public Errno Rename(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, VfsRenameFlags flags)
    {
        var path = _paths.PathOf(parent, name);
        var newPath = _paths.PathOf(newParent, newName);

        // The rename itself; nothing moves out of (or into) what a blocking rule covers; the new name is created.
        var refused = Refuse(VfsOps.Rename, path, newPath, Caller)
            ?? Pinned(VfsOps.Rename, path, newPath)
            ?? Pinned(VfsOps.Rename, newPath, path)
            ?? Refuse(VfsOps.Create, newPath, null, Caller);

        // Onto an existing name: that file's content is replaced or (exchange) moved away.
        if (refused is null && _paths.Knows(newParent, newName))
        {
            refused = Refuse(VfsOps.Remove, newPath, null, Caller) ?? Refuse(VfsOps.Write, newPath, null, Caller);
        }

        if (refused is { } error)
        {
            return error;
        }

        var result = inner.Rename(parent, name, newParent, newName, flags);
        if (result == Errno.None)
        {
            _paths.Renamed(parent, name, newParent, newName, flags.HasFlag(VfsRenameFlags.Exchange));
            Report(VfsOps.Rename, path, null, Caller, newPath: newPath);
        }

        return result;
    }

    public VfsResult<ulong> Open(ulong node, int flags)
    {
        if (Refuse(VfsOps.Open, node, Caller) is { } refused)
        {
            return refused;
        }

        var truncates = (flags & OpenFlags.Truncate) != 0 && OpenFlags.Writes(flags);
        if (truncates && (Refuse(VfsOps.Truncate, node, Caller) ?? Refuse(VfsOps.Write, node, Caller)) is { } noTruncate)
        {
            return noTruncate;
        }

        var result = inner.Open(node, flags);
        if (result.IsOk)
        {
            Report(VfsOps.Open, node, null, Caller);
            if (truncates)
            {
                Report(VfsOps.Truncate, node, null, Caller);
            }
        }

        return result;
    }

    public VfsResult<VfsCreated> Create(ulong parent, ReadOnlySpan<byte> name, uint mode, int flags, VfsCaller caller)
    {
        var path = _paths.PathOf(parent, name);
        if (Refuse(VfsOps.Create, path, null, caller) is { } refused)
        {
            return refused;
        }

        var result = inner.Create(parent, name, mode, flags, caller);
        if (result.IsOk)
        {
            _paths.Added(parent, name, result.Value.Entry.NodeId);
            Report(VfsOps.Create, path, result.Value.Entry.Attr, caller);
        }

        return result;
    }

    public VfsResult<int> Read(ulong node, ulong handle, long offset, Span<byte> buffer)
    {
        if (Refuse(VfsOps.Read, node, Caller) is { } refused)
        {
            return refused;
        }

        var result = inner.Read(node, handle, offset, buffer);
        if (result.IsOk)
        {
            Report(VfsOps.Read, node, null, Caller, size: result.Value);
        }

        return result;
    }

    public VfsResult<int> Write(ulong node, ulong handle, long offset, ReadOnlySpan<byte> data)
    {
        if (Refuse(VfsOps.Write, node, Caller) is { } refused)
        {
            return refused;
        }

        var path = engine.Observes || engine.Mutates ? _paths.PathOf(node) : null;

        VfsResult<int> result;
        if (engine.Mutates && path is not null)
        {
            if (engine.Mutate(path, offset, data.ToArray(), Caller) is not { } replacement)
            {
                engine.Refused(VfsOps.Write, path, null, Caller, "a write hook failed or timed out");
                return Errno.EPERM;
            }

            result = inner.Write(node, handle, offset, replacement.Span);

            // The guest wrote its bytes as far as it can tell: a shorter or longer replacement must not make it retry.
            result = result.IsOk ? data.Length : result;
        }
        else
        {
            result = inner.Write(node, handle, offset, data);
        }

        if (result.IsOk)
        {
            Report(VfsOps.Write, path, null, Caller, size: result.Value, node: node);
        }

        return result;
    }

    public Errno Flush(ulong node, ulong handle) => inner.Flush(node, handle);

    public Errno Fsync(ulong node, ulong handle, bool dataOnly) => Status(VfsOps.Sync, node, () => inner.Fsync(node, handle, dataOnly));

    public Errno Release(ulong node, ulong handle)
    {
        var result = inner.Release(node, handle);
        if (result == Errno.None)
        {
            Report(VfsOps.Close, node, null, Caller);
        }

        return result;
    }

    public Errno Fallocate(ulong node, ulong handle, int mode, long offset, long length) =>
        Status(VfsOps.Write, node, () => inner.Fallocate(node, handle, mode, offset, length));

    public VfsResult<ulong> OpenDir(ulong node) => Simple(VfsOps.ReadDir, node, () => inner.OpenDir(node));

    public Errno ReadDir(ulong node, ulong handle, ulong offset, bool plus, VfsDirFiller fill) =>
        inner.ReadDir(node, handle, offset, plus, (in VfsDirEntry entry) =>
        {
            if (!fill(entry))
            {
                return false;
            }

            if (entry.Entry is { } looked)
            {
                _paths.Added(node, entry.Name, looked.NodeId);
            }

            return true;
        });

    public Errno ReleaseDir(ulong node, ulong handle) => inner.ReleaseDir(node, handle);

    public VfsResult<VfsStatFs> StatFs(ulong node) => Simple(VfsOps.StatFs, node, () => inner.StatFs(node));

    public VfsResult<byte[]> GetXattr(ulong node, string name) => Simple(VfsOps.Xattr, node, () => inner.GetXattr(node, name));

    public Errno SetXattr(ulong node, string name, ReadOnlySpan<byte> value, int flags)
    {
        var copy = value.ToArray();
        return Status(VfsOps.Xattr, node, () => inner.SetXattr(node, name, copy, flags));
    }

    public VfsResult<IReadOnlyList<string>> ListXattr(ulong node) => Simple(VfsOps.Xattr, node, () => inner.ListXattr(node));

    public Errno RemoveXattr(ulong node, string name) => Status(VfsOps.Xattr, node, () => inner.RemoveXattr(node, name));

    public void Dispose() => inner.Dispose();

    /// <summary>Who sent the request being answered (<see cref="VfsRequestContext"/>).</summary>
    private static VfsCaller Caller => VfsRequestContext.Caller;

    private bool NeedPath(string op) => engine.Checks(op) || engine.Observes;

    /// <summary>
    /// Checks an op on a node by id, against every path it is known by (a hard-linked file is
    /// protected under any of its names); computes paths only when something checks the op.
    /// </summary>
    private Errno? Refuse(string op, ulong node, VfsCaller caller)
    {
        if (!engine.Checks(op))
        {
            return null;
        }

        var paths = _paths.PathsOf(node);
        if (paths.Count == 0)
        {
            return Refuse(op, null, null, caller);
        }

        foreach (var path in paths)
        {
            if (Refuse(op, path, null, caller) is { } refused)
            {
                return refused;
            }
        }

        return null;
    }

    private Errno? Refuse(string op, string? path, string? newPath, VfsCaller caller)
    {
        if (engine.Refusal(op, path, newPath, caller) is not { } reason)
        {
            return null;
        }

        engine.Refused(op, path, newPath, caller, reason);
        return Errno.EPERM;
    }

    private Errno? Pinned(string op, string? path, string? newPath)
    {
        if (engine.Pinned(path) is not { } reason)
        {
            return null;
        }

        engine.Refused(op, path, newPath, Caller, reason);
        return Errno.EPERM;
    }

    private VfsResult<T> Simple<T>(string op, ulong node, Func<VfsResult<T>> run)
    {
        if (Refuse(op, node, Caller) is { } refused)
        {
            return refused;
        }

        var result = run();
        if (result.IsOk)
        {
            Report(op, node, null, Caller);
        }

        return result;
    }

    private Errno Status(string op, ulong node, Func<Errno> run)
    {
        if (Refuse(op, node, Caller) is { } refused)
        {
            return refused;
        }

        var result = run();
        if (result == Errno.None)
        {
            Report(op, node, null, Caller);
        }

        return result;
    }

    private VfsResult<VfsEntry> Added(string op, ulong parent, ReadOnlySpan<byte> name, string? path, VfsCaller caller, VfsResult<VfsEntry> result)
    {
        if (result.IsOk)
        {
            _paths.Added(parent, name, result.Value.NodeId);
            Report(op, path, result.Value.Attr, caller);
        }

        return result;
    }

    private Errno Removal(ulong parent, ReadOnlySpan<byte> name, RemoveName remove)
    {
        var path = _paths.PathOf(parent, name);
        if (Refuse(VfsOps.Remove, path, null, Caller) is { } refused)
        {
            return refused;
        }

        var result = remove(parent, name);
        if (result == Errno.None)
        {
            _paths.Removed(parent, name);
            Report(VfsOps.Remove, path, null, Caller);
        }

        return result;
    }

    private delegate Errno RemoveName(ulong parent, ReadOnlySpan<byte> name);

    private void Report(string op, ulong node, VfsAttr? attr, VfsCaller caller, long? size = null)
    {
        if (engine.Observes)
        {
            Report(op, _paths.PathOf(node), attr, caller, size: size, node: node);
        }
    }

    /// <summary>
    /// An operation that succeeded, as a <see cref="FileEvent"/>. Without attributes from the
    /// operation itself the node's are read (only when something observes).
    /// </summary>
    private void Report(string op, string? path, VfsAttr? attr, VfsCaller caller, string? newPath = null, long? size = null, ulong node = 0)
    {
        if (!engine.Observes || path is null)
        {
            return;
        }

        if (attr is null && node != 0 && inner.GetAttr(node) is { IsOk: true } current)
        {
            attr = current.Value;
        }

        engine.Happened(new FileEvent
        {
            Time = engine.Now,
            Op = op,
            Path = path,
            NewPath = newPath,
            Size = size ?? (long)(attr?.Size ?? 0),
            Mode = (attr?.Mode ?? 0) & VfsMode.PermissionMask,
            Uid = attr?.Uid ?? caller.Uid,
            Gid = attr?.Gid ?? caller.Gid,
        });
    }
}
