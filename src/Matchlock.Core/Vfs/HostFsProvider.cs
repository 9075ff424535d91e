using Matchlock.Core.Interop;
using Microsoft.Win32.SafeHandles;
using static Matchlock.Core.Interop.VfsNative;

namespace Matchlock.Core.Vfs;

/// <summary>
/// A live view of a host folder (the <c>host_fs</c> mount type, and <c>ro</c> with
/// <see cref="ReadOnly"/>). See docs/VFS.md for the confinement argument; in short:
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>The root is opened once from the user's absolute path with
/// <c>openat2(O_PATH|O_DIRECTORY, RESOLVE_NO_MAGICLINKS)</c>: symlinks in the path the user
/// typed are followed (it is their path), /proc magic links are not.</item>
/// <item>Every other node is an <c>O_PATH|O_NOFOLLOW</c> descriptor opened from its parent's
/// descriptor by one checked name (<see cref="VfsName"/>); every operation is an <c>*at()</c> call
/// on such descriptors. No host path string is ever built from guest input, and the server never
/// follows a symlink, so nothing the guest names resolves outside the root.</item>
/// <item>Host-side safety: only regular files are created (mknod of anything else is EPERM),
/// setuid/setgid bits never reach a host file, and only <c>user.*</c> xattrs can be set.</item>
/// <item>Ownership: files the guest creates are chowned to the root's owner (when the server runs
/// as root); the uid, gid and mode the guest asked for live in <see cref="OwnershipXattr"/>.</item>
/// </list>
/// </remarks>
internal sealed partial class HostFsProvider : IVfsProvider
{
    private const int PathFlags = OPath | ONoFollow | OCloExec;

    private readonly NodeTable<(ulong Dev, ulong Ino), HostNode> _nodes;
    private readonly HandleTable<HostFileHandle> _files = new();
    private readonly HandleTable<HostDirHandle> _dirs = new();
    private readonly uint _ownerUid;
    private readonly uint _ownerGid;
    private readonly bool _chownCreated;

    private HostFsProvider(SafeFileHandle root, Statx st, bool readOnly)
    {
        ReadOnly = readOnly;
        _ownerUid = st.Uid;
        _ownerGid = st.Gid;
        _chownCreated = EffectiveUserId == 0;
        _nodes = new(KeyOf(st), new HostNode(root, VfsMode.Directory));
    }

    public bool ReadOnly { get; }

    /// <summary>Nodes the kernel currently holds, the root included (for tests and diagnostics).</summary>
    internal int NodeCount => _nodes.Count;

    /// <summary>Open file and directory handles (for tests and diagnostics).</summary>
    internal int HandleCount => _files.Count + _dirs.Count;

    /// <summary>
    /// Opens a host folder as a mount root. The path must be absolute and name a directory;
    /// anything else is the user's input to fix.
    /// </summary>
    public static HostFsProvider Open(string hostPath, bool readOnly)
    {
        if (!Path.IsPathFullyQualified(hostPath))
        {
            throw new InvalidInputException($"the host folder \"{hostPath}\" of a mount must be an absolute path");
        }

        var root = OpenAt2(hostPath, OPath | ODirectory | OCloExec, ResolveNoMagicLinks);
        if (root.IsInvalid)
        {
            var errno = LastError;
            root.Dispose();
            throw new InvalidInputException(
                $"cannot open the host folder \"{hostPath}\" to mount it: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); it must exist and be a directory");
        }

        var e = StatxNode(root, out var st);
        if (e != 0)
        {
            root.Dispose();
            throw new InvalidInputException($"cannot stat the host folder \"{hostPath}\": errno {e}");
        }

        return new HostFsProvider(root, st, readOnly);
    }

    public VfsResult<VfsEntry> Lookup(ulong parent, ReadOnlySpan<byte> name)
    {
        if (VfsName.Check(name) is var bad && bad != Errno.None)
        {
            return bad;
        }

        if (!_nodes.TryGet(parent, out var dir))
        {
            return Errno.ENOENT;
        }

        return dir.IsDirectory ? Adopt(OpenAt(dir.Fd, name, PathFlags, 0)) : Errno.ENOTDIR;
    }

    public void Forget(ulong node, ulong lookups) => _nodes.Forget(node, lookups);

    public VfsResult<VfsAttr> GetAttr(ulong node) =>
        _nodes.TryGet(node, out var n) ? AttrOf(n) : Errno.ENOENT;

    public VfsResult<VfsAttr> SetAttr(ulong node, VfsSetAttr changes)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (changes.Mode is not null || changes.Uid is not null || changes.Gid is not null)
        {
            var e = SetOwnership(n, changes);
            if (e != Errno.None)
            {
                return e;
            }
        }

        if (changes.Size is { } size)
        {
            var e = Truncate(node, n, changes.Handle, size);
            if (e != Errno.None)
            {
                return e;
            }
        }

        if (changes.ChangesTimes)
        {
            var e = SetTimesNode(
                n.Fd,
                changes.Atime is { } a ? (a.Seconds, a.Nanoseconds) : null,
                changes.AtimeNow,
                changes.Mtime is { } m ? (m.Seconds, m.Nanoseconds) : null,
                changes.MtimeNow);
            if (e != 0)
            {
                return (Errno)e;
            }
        }

        return AttrOf(n);
    }

    public VfsResult<byte[]> ReadLink(ulong node)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (n.FileType != VfsMode.Symlink)
        {
            return Errno.EINVAL;
        }

        var e = ReadLinkNode(n.Fd, out var target);
        return e == 0 ? target : (Errno)e;
    }

    public VfsResult<VfsStatFs> StatFs(ulong node)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        var e = FStatFs(n.Fd, out var st);
        return e != 0
            ? (Errno)e
            : new VfsStatFs(st.Blocks, st.BFree, st.BAvail, st.Files, st.FFree, (uint)st.BSize, (uint)Math.Min(st.NameLen, VfsName.MaxLength), (uint)st.FrSize);
    }

    public void Dispose()
    {
        _files.Dispose();
        _dirs.Dispose();
        _nodes.Dispose();
    }

    private static (ulong Dev, ulong Ino) KeyOf(in Statx st) => (((ulong)st.DevMajor << 32) | st.DevMinor, st.Ino);

    /// <summary>
    /// Takes a freshly opened O_PATH descriptor into the node table (one lookup), or the errno of
    /// the open that failed.
    /// </summary>
    private VfsResult<VfsEntry> Adopt(SafeFileHandle fd)
    {
        if (fd.IsInvalid)
        {
            var errno = LastError;
            fd.Dispose();
            return (Errno)errno;
        }

        var e = StatxNode(fd, out var st);
        if (e != 0)
        {
            fd.Dispose();
            return (Errno)e;
        }

        var (id, node) = _nodes.Acquire(KeyOf(st), new HostNode(fd, st.Mode & VfsMode.TypeMask));
        var attr = AttrOf(node, st); // the statx just made: one syscall per lookup, not two
        if (!attr.IsOk)
        {
            _nodes.Forget(id, 1);
            return attr.Error;
        }

        return new VfsEntry(id, attr.Value);
    }

    /// <summary>The host's attributes, with the owner and mode of the ownership xattr when present.</summary>
    private static VfsResult<VfsAttr> AttrOf(HostNode node)
    {
        var e = StatxNode(node.Fd, out var st);
        return e != 0 ? (Errno)e : AttrOf(node, st);
    }

    /// <summary>As <see cref="AttrOf(HostNode)"/> from a statx of the node's inode already made.</summary>
    private static VfsResult<VfsAttr> AttrOf(HostNode node, in Statx st)
    {
        var attr = new VfsAttr(
            st.Ino,
            st.Size,
            st.Blocks,
            new VfsTime(st.Atime.Seconds, st.Atime.Nanoseconds),
            new VfsTime(st.Mtime.Seconds, st.Mtime.Nanoseconds),
            new VfsTime(st.Ctime.Seconds, st.Ctime.Nanoseconds),
            st.Mode,
            st.Nlink,
            st.Uid,
            st.Gid,
            (st.RdevMinor & 0xff) | (st.RdevMajor << 8) | ((st.RdevMinor & ~0xffu) << 12),
            st.BlkSize);
        return ReadOwnership(node) is { } own
            ? attr with { Uid = own.Uid, Gid = own.Gid, Mode = (st.Mode & VfsMode.TypeMask) | own.Mode }
            : attr;
    }

    private static OwnershipXattr? ReadOwnership(HostNode node) =>
        node.TakesUserXattrs && GetXattrNode(node.Fd, OwnershipXattr.Name, out var value) == 0 ? OwnershipXattr.Parse(value) : null;

    /// <summary>
    /// chmod and chown as the guest sees them. The host file gets only the permission bits (and
    /// sticky), never setuid/setgid, and keeps its host owner; the guest's full mode and owner go
    /// to the ownership xattr whenever they differ from what the host file can show.
    /// Symlinks have no mode on Linux and cannot carry user.* xattrs: chown of one is accepted
    /// and not recorded (tar as root chowns every symlink it extracts).
    /// </summary>
    private static Errno SetOwnership(HostNode n, VfsSetAttr changes)
    {
        if (!n.TakesUserXattrs)
        {
            return changes.Mode is not null && n.FileType == VfsMode.Symlink ? Errno.EOPNOTSUPP : Errno.None;
        }

        var e = StatxNode(n.Fd, out var st);
        if (e != 0)
        {
            return (Errno)e;
        }

        var own = ReadOwnership(n) ?? new OwnershipXattr(st.Uid, st.Gid, st.Mode & VfsMode.PermissionMask);
        var wanted = new OwnershipXattr(changes.Uid ?? own.Uid, changes.Gid ?? own.Gid, (changes.Mode ?? own.Mode) & VfsMode.PermissionMask);
        if (changes.Mode is { } mode)
        {
            e = ChmodNode(n.Fd, mode & VfsMode.PermissionMask & ~(VfsMode.SetUid | VfsMode.SetGid));
            if (e != 0)
            {
                return (Errno)e;
            }
        }

        var hostShows = new OwnershipXattr(st.Uid, st.Gid, wanted.Mode & ~(VfsMode.SetUid | VfsMode.SetGid));
        if (wanted == hostShows && ReadOwnership(n) is null)
        {
            return Errno.None;
        }

        e = SetXattrNode(n.Fd, OwnershipXattr.Name, wanted.Format(), 0);
        return (Errno)e;
    }

    private Errno Truncate(ulong id, HostNode n, ulong? handle, ulong size)
    {
        if (n.IsDirectory)
        {
            return Errno.EISDIR;
        }

        if (!n.IsRegular)
        {
            return Errno.EINVAL;
        }

        if (size > long.MaxValue)
        {
            return Errno.EFBIG;
        }

        if (handle is { } h && _files.TryGet(h, out var open) && open.Node == id)
        {
            return (Errno)FTruncate(open.Fd, (long)size);
        }

        using var fd = Reopen(n.Fd, OWrOnly);
        return fd.IsInvalid ? (Errno)LastError : (Errno)FTruncate(fd, (long)size);
    }
}
