using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using static Matchlock.Core.Interop.VfsNative;

namespace Matchlock.Core.Vfs;

/// <summary>Open files and directories: handles over real descriptors reopened from the nodes.</summary>
internal sealed partial class HostFsProvider
{
    public VfsResult<ulong> Open(ulong node, int flags)
    {
        var fd = OpenNode(node, flags);
        return fd.IsOk ? _files.Add(new HostFileHandle(node, fd.Value)) : fd.Error;
    }

    public VfsResult<int> Read(ulong node, ulong handle, long offset, Span<byte> buffer)
    {
        if (!_files.TryGet(handle, out var open) || open.Node != node)
        {
            return Errno.EBADF;
        }

        var n = PRead(open.Fd, buffer, offset);
        return n < 0 ? (Errno)LastError : (int)n;
    }

    public VfsResult<int> Write(ulong node, ulong handle, long offset, ReadOnlySpan<byte> data)
    {
        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (!_files.TryGet(handle, out var open) || open.Node != node)
        {
            return Errno.EBADF;
        }

        var n = PWrite(open.Fd, data, offset);
        return n < 0 ? (Errno)LastError : (int)n;
    }

    // Locks are not taken on the host descriptors (the FUSE server answers lock requests), so
    // there is nothing to drop at close(2).
    public Errno Flush(ulong node, ulong handle) =>
        _files.TryGet(handle, out var open) && open.Node == node ? Errno.None : Errno.EBADF;

    public Errno Fsync(ulong node, ulong handle, bool dataOnly) =>
        _files.TryGet(handle, out var open) && open.Node == node ? (Errno)FSync(open.Fd, dataOnly) : Errno.EBADF;

    public Errno Release(ulong node, ulong handle)
    {
        if (!_files.TryRemove(handle, out var open))
        {
            return Errno.EBADF;
        }

        open.Dispose();
        return Errno.None;
    }

    public Errno Fallocate(ulong node, ulong handle, int mode, long offset, long length)
    {
        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        return _files.TryGet(handle, out var open) && open.Node == node ? (Errno)FAllocate(open.Fd, mode, offset, length) : Errno.EBADF;
    }

    public VfsResult<ulong> OpenDir(ulong node)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (!n.IsDirectory)
        {
            return Errno.ENOTDIR;
        }

        // "." relative to the node's own descriptor: the directory the node holds, not a path.
        var fd = OpenAt(n.Fd, "."u8, ORdOnly | ODirectory | OCloExec, 0);
        if (fd.IsInvalid)
        {
            var errno = LastError;
            fd.Dispose();
            return (Errno)errno;
        }

        return _dirs.Add(new HostDirHandle(node, fd));
    }

    public Errno ReadDir(ulong node, ulong handle, ulong offset, bool plus, VfsDirFiller fill)
    {
        if (!_dirs.TryGet(handle, out var dir) || dir.Node != node)
        {
            return Errno.EBADF;
        }

        lock (dir.Lock)
        {
            // Listing on from where the last call stopped (the kernel asks again at the last
            // entry's d_off) continues in the buffered getdents64 batch instead of seeking back
            // and re-reading it: a READDIRPLUS reply holds ~25 entries of the ~800 a batch reads.
            if (offset != dir.NextOffset || dir.Start >= dir.End)
            {
                if (LSeek(dir.Fd, (long)offset) < 0)
                {
                    dir.Reset();
                    return (Errno)LastError;
                }

                dir.Start = dir.End = 0;
                dir.NextOffset = offset;
            }

            while (true)
            {
                if (dir.Start >= dir.End)
                {
                    var n = GetDents64(dir.Fd, dir.Buffer);
                    if (n < 0)
                    {
                        var error = (Errno)LastError;
                        dir.Reset();
                        return error;
                    }

                    if (n == 0)
                    {
                        return Errno.None;
                    }

                    dir.Start = 0;
                    dir.End = (int)n;
                }

                // struct linux_dirent64 (getdents64(2)): ino u64, off s64, reclen u16, type u8, name.
                while (dir.Start < dir.End)
                {
                    var record = dir.Buffer.AsSpan(dir.Start, dir.End - dir.Start);
                    var reclen = BinaryPrimitives.ReadUInt16LittleEndian(record[16..]);
                    var nameField = record[19..reclen];
                    var name = nameField[..nameField.IndexOf((byte)0)].ToArray();
                    var entry = new VfsDirEntry(
                        name,
                        BinaryPrimitives.ReadUInt64LittleEndian(record[8..]),
                        record[18],
                        BinaryPrimitives.ReadUInt64LittleEndian(record),
                        null);

                    if (plus && VfsName.Check(name) == Errno.None)
                    {
                        var looked = Lookup(node, name);
                        if (looked.IsOk)
                        {
                            entry = entry with { Entry = looked.Value, Ino = looked.Value.Attr.Ino };
                            if (!fill(entry))
                            {
                                _nodes.Forget(looked.Value.NodeId, 1);
                                return Errno.None; // not taken: the next call starts with it
                            }
                        }

                        // else: gone since getdents64 listed it.
                    }
                    else if (!fill(entry))
                    {
                        return Errno.None;
                    }

                    dir.Start += reclen;
                    dir.NextOffset = entry.Offset;
                }
            }
        }
    }

    public Errno ReleaseDir(ulong node, ulong handle)
    {
        if (!_dirs.TryRemove(handle, out var dir))
        {
            return Errno.EBADF;
        }

        dir.Dispose();
        return Errno.None;
    }

    /// <summary>
    /// A real descriptor for a regular-file node, reopened through its magic link with the guest's
    /// flags (filtered). Other types are refused: opening a FIFO or device on the host could block
    /// the server or reach hardware, and the guest's kernel opens those itself anyway.
    /// </summary>
    private VfsResult<SafeFileHandle> OpenNode(ulong node, int flags)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (n.IsDirectory)
        {
            return Errno.EISDIR;
        }

        if (!n.IsRegular)
        {
            return n.FileType == VfsMode.Symlink ? Errno.ELOOP : Errno.EACCES;
        }

        if (ReadOnly && OpenFlags.Writes(flags))
        {
            return Errno.EROFS;
        }

        var fd = Reopen(n.Fd, flags & PassedOpenFlags);
        if (fd.IsInvalid)
        {
            var errno = LastError;
            fd.Dispose();
            return (Errno)errno;
        }

        return fd;
    }
}
