namespace Matchlock.Core.Vfs;

/// <summary>
/// Receives directory entries during <see cref="IVfsProvider.ReadDir"/>; returns false when the
/// reply is full, and that entry was not taken (the provider undoes its lookup).
/// </summary>
internal delegate bool VfsDirFiller(in VfsDirEntry entry);

/// <summary>A file created and opened in one step (FUSE CREATE).</summary>
internal readonly record struct VfsCreated(VfsEntry Entry, ulong Handle);

/// <summary>
/// A filesystem as a FUSE server drives it: nodes by id (1 is the root), names one component at
/// a time, open files and directories by handle. Every operation the kernel can send has a
/// method; failures are errnos (<see cref="VfsResult{T}"/> or a bare <see cref="Errno"/>), never
/// exceptions.
/// </summary>
/// <remarks>
/// <para>Lookup counts follow the FUSE contract: each <see cref="VfsEntry"/> returned (by
/// <see cref="Lookup"/>, <see cref="Create"/>, <see cref="Mkdir"/>, <see cref="Mknod"/>,
/// <see cref="Symlink"/>, <see cref="Link"/>, and readdirplus) is one lookup the kernel owns;
/// <see cref="Forget"/> gives them back, and a node whose count reaches zero is dropped. The root is
/// never dropped.</para>
/// <para>Permission checks are the guest kernel's (the mount uses <c>default_permissions</c>); a
/// provider checks only what keeps the host safe: names, read-only, file types.</para>
/// <para>Every method is safe to call from several threads at once, as the server answers many
/// requests in flight.</para>
/// </remarks>
internal interface IVfsProvider : IDisposable
{
    /// <summary>The node id of the mount's root directory.</summary>
    public const ulong RootId = 1;

    /// <summary>True when every mutating operation, and every open for writing, answers EROFS.</summary>
    bool ReadOnly { get; }

    VfsResult<VfsEntry> Lookup(ulong parent, ReadOnlySpan<byte> name);

    /// <summary>Gives back <paramref name="lookups"/> lookups of a node (FUSE FORGET); unknown ids are ignored.</summary>
    void Forget(ulong node, ulong lookups);

    VfsResult<VfsAttr> GetAttr(ulong node);

    /// <summary>Applies the non-null changes in order mode, owner, size, times; returns the new attributes.</summary>
    VfsResult<VfsAttr> SetAttr(ulong node, VfsSetAttr changes);

    /// <summary>The target text of a symlink node, as stored (never resolved).</summary>
    VfsResult<byte[]> ReadLink(ulong node);

    /// <summary>Creates a non-directory node; which file types a provider accepts is its own rule (host: regular files only).</summary>
    VfsResult<VfsEntry> Mknod(ulong parent, ReadOnlySpan<byte> name, uint mode, uint rdev, VfsCaller caller);

    VfsResult<VfsEntry> Mkdir(ulong parent, ReadOnlySpan<byte> name, uint mode, VfsCaller caller);

    VfsResult<VfsEntry> Symlink(ulong parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, VfsCaller caller);

    /// <summary>A new name for an existing node of this mount (hard link); directories are refused with EPERM.</summary>
    VfsResult<VfsEntry> Link(ulong node, ulong newParent, ReadOnlySpan<byte> newName);

    Errno Unlink(ulong parent, ReadOnlySpan<byte> name);

    Errno Rmdir(ulong parent, ReadOnlySpan<byte> name);

    Errno Rename(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, VfsRenameFlags flags);

    /// <summary>Opens a regular file with the guest's open flags; returns the file handle.</summary>
    VfsResult<ulong> Open(ulong node, int flags);

    /// <summary>Creates (or, without O_EXCL, opens an existing) regular file and opens it.</summary>
    VfsResult<VfsCreated> Create(ulong parent, ReadOnlySpan<byte> name, uint mode, int flags, VfsCaller caller);

    /// <summary>Reads up to <c>buffer.Length</c> bytes at an offset; returns the count (0 at end of file).</summary>
    VfsResult<int> Read(ulong node, ulong handle, long offset, Span<byte> buffer);

    /// <summary>Writes at an offset (O_APPEND handles append whatever the offset); returns the count.</summary>
    VfsResult<int> Write(ulong node, ulong handle, long offset, ReadOnlySpan<byte> data);

    /// <summary>Called on every close(2) of a descriptor of the handle.</summary>
    Errno Flush(ulong node, ulong handle);

    Errno Fsync(ulong node, ulong handle, bool dataOnly);

    /// <summary>The last reference to an open file is gone; the handle is invalid afterwards.</summary>
    Errno Release(ulong node, ulong handle);

    /// <summary>fallocate(2) on an open file; EOPNOTSUPP for modes the provider lacks.</summary>
    Errno Fallocate(ulong node, ulong handle, int mode, long offset, long length);

    VfsResult<ulong> OpenDir(ulong node);

    /// <summary>
    /// Lists a directory from <paramref name="offset"/> (0, or the <see cref="VfsDirEntry.Offset"/>
    /// of the last entry taken) until the filler is full or the directory ends. With
    /// <paramref name="plus"/> each entry but <c>.</c> and <c>..</c> is looked up (readdirplus).
    /// </summary>
    Errno ReadDir(ulong node, ulong handle, ulong offset, bool plus, VfsDirFiller fill);

    Errno ReleaseDir(ulong node, ulong handle);

    VfsResult<VfsStatFs> StatFs(ulong node);

    VfsResult<byte[]> GetXattr(ulong node, string name);

    /// <summary>setxattr(2); <paramref name="flags"/> is XATTR_CREATE (1) or XATTR_REPLACE (2) or 0.</summary>
    Errno SetXattr(ulong node, string name, ReadOnlySpan<byte> value, int flags);

    VfsResult<IReadOnlyList<string>> ListXattr(ulong node);

    Errno RemoveXattr(ulong node, string name);
}
