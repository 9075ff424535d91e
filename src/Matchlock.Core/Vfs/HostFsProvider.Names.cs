using Microsoft.Win32.SafeHandles;
using static Matchlock.Core.Interop.VfsNative;

namespace Matchlock.Core.Vfs;

/// <summary>Operations that add, remove or move names in a host directory.</summary>
internal sealed partial class HostFsProvider
{
    // The open flags passed to the host: access mode, append, truncate and the sync flags.
    // O_DIRECT (alignment the server cannot promise), O_NOATIME and the rest are dropped.
    private const int PassedOpenFlags = OAccMode | OAppend | OTrunc | 0x101000;

    public VfsResult<VfsEntry> Mknod(ulong parent, ReadOnlySpan<byte> name, uint mode, uint rdev, VfsCaller caller)
    {
        // No device nodes, FIFOs or sockets in the user's folder (docs/VFS.md).
        if ((mode & VfsMode.TypeMask) is not (VfsMode.Regular or 0))
        {
            return ReadOnly ? Errno.EROFS : Errno.EPERM;
        }

        var created = CreateFile(parent, name, mode, OWrOnly | OExcl, caller);
        if (!created.IsOk)
        {
            return created.Error;
        }

        var (entry, fd) = created.Value;
        fd.Dispose();
        return entry;
    }

    public VfsResult<VfsCreated> Create(ulong parent, ReadOnlySpan<byte> name, uint mode, int flags, VfsCaller caller)
    {
        var created = CreateFile(parent, name, mode, flags, caller);
        if (!created.IsOk)
        {
            return created.Error;
        }

        var (entry, fd) = created.Value;
        return new VfsCreated(entry, _files.Add(new HostFileHandle(entry.NodeId, fd)));
    }

    public VfsResult<VfsEntry> Mkdir(ulong parent, ReadOnlySpan<byte> name, uint mode, VfsCaller caller)
    {
        var check = CheckMutation(parent, name, out var dir);
        if (check != Errno.None)
        {
            return check;
        }

        var e = MkdirAt(dir.Fd, name, HostMode(mode));
        if (e != 0)
        {
            return (Errno)e;
        }

        return AdoptCreated(OpenAt(dir.Fd, name, PathFlags | ODirectory, 0), VfsMode.Directory | (mode & VfsMode.PermissionMask), caller, recordOwner: true);
    }

    public VfsResult<VfsEntry> Symlink(ulong parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, VfsCaller caller)
    {
        var check = CheckMutation(parent, name, out var dir);
        if (check != Errno.None)
        {
            return check;
        }

        // The target is stored text, never resolved by the server (the guest's kernel follows it).
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

        var e = SymlinkAt(target, dir.Fd, name);
        if (e != 0)
        {
            return (Errno)e;
        }

        return AdoptCreated(OpenAt(dir.Fd, name, PathFlags, 0), VfsMode.Symlink | 0x1FF, caller, recordOwner: false);
    }

    public VfsResult<VfsEntry> Link(ulong node, ulong newParent, ReadOnlySpan<byte> newName)
    {
        var check = CheckMutation(newParent, newName, out var dir);
        if (check != Errno.None)
        {
            return check;
        }

        // Only a node of this mount can be linked: the source is a node id, never a path.
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (n.IsDirectory)
        {
            return Errno.EPERM;
        }

        var e = LinkNode(n.Fd, dir.Fd, newName);
        return e != 0 ? (Errno)e : Adopt(OpenAt(dir.Fd, newName, PathFlags, 0));
    }

    public Errno Unlink(ulong parent, ReadOnlySpan<byte> name)
    {
        var check = CheckMutation(parent, name, out var dir);
        return check != Errno.None ? check : (Errno)UnlinkAt(dir.Fd, name, 0);
    }

    public Errno Rmdir(ulong parent, ReadOnlySpan<byte> name)
    {
        var check = CheckMutation(parent, name, out var dir);
        return check != Errno.None ? check : (Errno)UnlinkAt(dir.Fd, name, AtRemoveDir);
    }

    public Errno Rename(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, VfsRenameFlags flags)
    {
        // Both ends are directories of this mount and single names: nothing can move out of the root.
        var check = CheckMutation(parent, name, out var from);
        if (check != Errno.None)
        {
            return check;
        }

        check = CheckMutation(newParent, newName, out var to);
        if (check != Errno.None)
        {
            return check;
        }

        if ((flags & ~(VfsRenameFlags.NoReplace | VfsRenameFlags.Exchange)) != 0
            || flags == (VfsRenameFlags.NoReplace | VfsRenameFlags.Exchange))
        {
            return Errno.EINVAL;
        }

        return (Errno)RenameAt2(from.Fd, name, to.Fd, newName, (uint)flags);
    }

    /// <summary>The checks every name-changing operation starts with: read-only, the name, a directory parent.</summary>
    private Errno CheckMutation(ulong parent, ReadOnlySpan<byte> name, out HostNode dir)
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

        if (!_nodes.TryGet(parent, out dir))
        {
            return Errno.ENOENT;
        }

        return dir.IsDirectory ? Errno.None : Errno.ENOTDIR;
    }

    // Permission bits and sticky for the host file; setuid and setgid stay in the xattr only.
    private static uint HostMode(uint mode) => mode & VfsMode.PermissionMask & ~(VfsMode.SetUid | VfsMode.SetGid);

    /// <summary>
    /// Creates a regular file, or opens an existing one when O_EXCL was not asked for. Only a file
    /// this call created gets the root's owner and the ownership xattr.
    /// </summary>
    private VfsResult<(VfsEntry Entry, SafeFileHandle Fd)> CreateFile(ulong parent, ReadOnlySpan<byte> name, uint mode, int flags, VfsCaller caller)
    {
        var check = CheckMutation(parent, name, out var dir);
        if (check != Errno.None)
        {
            return check;
        }

        var passed = (flags & PassedOpenFlags) | ONoFollow | OCloExec;
        var fd = OpenAt(dir.Fd, name, passed | OCreat | OExcl, HostMode(mode));
        if (fd.IsInvalid)
        {
            var errno = LastError;
            fd.Dispose();
            if (errno != (int)Errno.EEXIST || (flags & OExcl) != 0)
            {
                return (Errno)errno;
            }

            // It exists: open it like OPEN would (regular files only, through an O_PATH node).
            var existing = Adopt(OpenAt(dir.Fd, name, PathFlags, 0));
            if (!existing.IsOk)
            {
                return existing.Error;
            }

            var opened = OpenNode(existing.Value.NodeId, flags);
            if (!opened.IsOk)
            {
                _nodes.Forget(existing.Value.NodeId, 1);
                return opened.Error;
            }

            return (existing.Value, opened.Value);
        }

        // The new node is the inode this descriptor holds, whatever has happened to the name since.
        var entry = AdoptCreated(Reopen(fd, OPath), VfsMode.Regular | (mode & VfsMode.PermissionMask), caller, recordOwner: true);
        if (!entry.IsOk)
        {
            fd.Dispose();
            return entry.Error;
        }

        return (entry.Value, fd);
    }

    /// <summary>
    /// Takes a node this server just created (an O_PATH descriptor, owned from here on), gives it
    /// the root's owner (when running as root), records the guest's owner and mode, and puts it in
    /// the node table. The xattr is best effort: on a filesystem without user xattrs the guest
    /// sees the host's owner and mode.
    /// </summary>
    private VfsResult<VfsEntry> AdoptCreated(SafeFileHandle path, uint mode, VfsCaller caller, bool recordOwner)
    {
        if (path.IsInvalid)
        {
            var errno = LastError;
            path.Dispose();
            return (Errno)errno;
        }

        if (recordOwner)
        {
            _ = SetXattrNode(path, OwnershipXattr.Name, new OwnershipXattr(caller.Uid, caller.Gid, mode & VfsMode.PermissionMask).Format(), 0);
        }

        if (_chownCreated)
        {
            var e = ChownNode(path, _ownerUid, _ownerGid);
            if (e != 0)
            {
                path.Dispose();
                return (Errno)e;
            }
        }

        return Adopt(path);
    }
}
