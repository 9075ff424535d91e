namespace Matchlock.Core.Vfs;

/// <summary>
/// One host file as a mount (docs/VFS.md "Single files"): the file's folder served with only that
/// name in it. The guest mounts this one-entry view at a hidden path and bind-mounts the file onto
/// its target, since a FUSE (or virtiofs) root must be a directory. The folder itself is the
/// user's: nothing in it but the file can be looked up, listed, created, renamed or removed, and
/// the folder's own attributes and xattrs cannot be changed. The file is served as
/// <paramref name="inner"/> serves it (host_fs, ro, an overlay's private copy).
/// </summary>
internal sealed class SingleFileProvider(IVfsProvider inner, string fileName) : IVfsProvider
{
    private readonly byte[] _name = System.Text.Encoding.UTF8.GetBytes(fileName);

    public bool ReadOnly => inner.ReadOnly;

    public VfsResult<VfsEntry> Lookup(ulong parent, ReadOnlySpan<byte> name) =>
        parent == IVfsProvider.RootId && !name.SequenceEqual(_name) ? Errno.ENOENT : inner.Lookup(parent, name);

    public void Forget(ulong node, ulong lookups) => inner.Forget(node, lookups);

    public VfsResult<VfsAttr> GetAttr(ulong node) => inner.GetAttr(node);

    public VfsResult<VfsAttr> SetAttr(ulong node, VfsSetAttr changes) => IsRoot(node) ? Errno.EPERM : inner.SetAttr(node, changes);

    public VfsResult<byte[]> ReadLink(ulong node) => inner.ReadLink(node);

    public VfsResult<VfsEntry> Mknod(ulong parent, ReadOnlySpan<byte> name, uint mode, uint rdev, VfsCaller caller) =>
        IsRoot(parent) ? Errno.EPERM : inner.Mknod(parent, name, mode, rdev, caller);

    public VfsResult<VfsEntry> Mkdir(ulong parent, ReadOnlySpan<byte> name, uint mode, VfsCaller caller) =>
        IsRoot(parent) ? Errno.EPERM : inner.Mkdir(parent, name, mode, caller);

    public VfsResult<VfsEntry> Symlink(ulong parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, VfsCaller caller) =>
        IsRoot(parent) ? Errno.EPERM : inner.Symlink(parent, name, target, caller);

    public VfsResult<VfsEntry> Link(ulong node, ulong newParent, ReadOnlySpan<byte> newName) =>
        IsRoot(newParent) ? Errno.EPERM : inner.Link(node, newParent, newName);

    public Errno Unlink(ulong parent, ReadOnlySpan<byte> name) => IsRoot(parent) ? Errno.EPERM : inner.Unlink(parent, name);

    public Errno Rmdir(ulong parent, ReadOnlySpan<byte> name) => IsRoot(parent) ? Errno.EPERM : inner.Rmdir(parent, name);

    public Errno Rename(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, VfsRenameFlags flags) =>
        IsRoot(parent) || IsRoot(newParent) ? Errno.EPERM : inner.Rename(parent, name, newParent, newName, flags);

    public VfsResult<ulong> Open(ulong node, int flags) => inner.Open(node, flags);

    public VfsResult<VfsCreated> Create(ulong parent, ReadOnlySpan<byte> name, uint mode, int flags, VfsCaller caller) =>
        IsRoot(parent) ? Errno.EPERM : inner.Create(parent, name, mode, flags, caller);

    public VfsResult<int> Read(ulong node, ulong handle, long offset, Span<byte> buffer) => inner.Read(node, handle, offset, buffer);

    public VfsResult<int> Write(ulong node, ulong handle, long offset, ReadOnlySpan<byte> data) => inner.Write(node, handle, offset, data);

    public Errno Flush(ulong node, ulong handle) => inner.Flush(node, handle);

    public Errno Fsync(ulong node, ulong handle, bool dataOnly) => inner.Fsync(node, handle, dataOnly);

    public Errno Release(ulong node, ulong handle) => inner.Release(node, handle);

    public Errno Fallocate(ulong node, ulong handle, int mode, long offset, long length) => inner.Fallocate(node, handle, mode, offset, length);

    public VfsResult<ulong> OpenDir(ulong node) => inner.OpenDir(node);

    /// <summary>The root lists <c>.</c>, <c>..</c> and the file only; an entry not shown is never looked up for the kernel.</summary>
    public Errno ReadDir(ulong node, ulong handle, ulong offset, bool plus, VfsDirFiller fill)
    {
        if (!IsRoot(node))
        {
            return inner.ReadDir(node, handle, offset, plus, fill);
        }

        // Plain listing from the inner provider (no lookups), filtered; the one entry is looked up here for readdirplus.
        var shown = new List<VfsDirEntry>();
        var error = inner.ReadDir(node, handle, offset, plus: false, (in VfsDirEntry e) =>
        {
            if (e.Name.AsSpan().SequenceEqual(_name) || e.Name is [(byte)'.'] or [(byte)'.', (byte)'.'])
            {
                shown.Add(e);
            }

            return true;
        });
        if (error != Errno.None)
        {
            return error;
        }

        foreach (var e in shown)
        {
            var entry = e;
            if (plus && e.Name.AsSpan().SequenceEqual(_name))
            {
                var looked = inner.Lookup(node, _name);
                if (!looked.IsOk)
                {
                    continue; // gone since the listing
                }

                entry = e with { Entry = looked.Value };
            }

            if (!fill(entry))
            {
                if (entry.Entry is { } taken)
                {
                    inner.Forget(taken.NodeId, 1);
                }

                break;
            }
        }

        return Errno.None;
    }

    public Errno ReleaseDir(ulong node, ulong handle) => inner.ReleaseDir(node, handle);

    public VfsResult<VfsStatFs> StatFs(ulong node) => inner.StatFs(node);

    public VfsResult<byte[]> GetXattr(ulong node, string name) => inner.GetXattr(node, name);

    public Errno SetXattr(ulong node, string name, ReadOnlySpan<byte> value, int flags) =>
        IsRoot(node) ? Errno.EPERM : inner.SetXattr(node, name, value, flags);

    public VfsResult<IReadOnlyList<string>> ListXattr(ulong node) => inner.ListXattr(node);

    public Errno RemoveXattr(ulong node, string name) => IsRoot(node) ? Errno.EPERM : inner.RemoveXattr(node, name);

    public void Dispose() => inner.Dispose();

    private static bool IsRoot(ulong node) => node == IVfsProvider.RootId;
}
