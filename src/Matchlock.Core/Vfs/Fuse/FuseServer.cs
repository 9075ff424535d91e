using System.Buffers;
using System.Text;

namespace Matchlock.Core.Vfs.Fuse;

/// <summary>How long the guest's kernel may cache names and attributes.</summary>
/// <param name="EntryValid">A name → node answer (and a negative one: not cached when zero).</param>
/// <param name="AttrValid">A node's attributes. Short: the host side may change files.</param>
internal sealed record FuseServerOptions(TimeSpan EntryValid, TimeSpan AttrValid)
{
    public static FuseServerOptions Default { get; } = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
}

/// <summary>
/// Answers one mount's FUSE requests from its provider (docs/VFS.md): parses each message
/// (<see cref="FuseRequestParser"/>), calls the provider, and builds the reply. Safe to call from
/// several threads at once (the provider is); each call handles one whole request.
/// </summary>
/// <remarks>
/// Locks are not advertised at INIT, so the guest's kernel keeps POSIX and flock locks itself
/// (correct for every process inside the sandbox, which is who shares the mount). ACCESS and FLUSH
/// are answered ENOSYS (the mount uses <c>default_permissions</c>; writes are not buffered here):
/// the kernel then stops sending them.
/// </remarks>
internal sealed class FuseServer(IVfsProvider provider, FuseServerOptions? options = null)
{
    /// <summary>What we take of the kernel's INIT flags.</summary>
    internal const uint WantedFlags =
        FuseConstants.AsyncRead | FuseConstants.AtomicOTrunc | FuseConstants.BigWrites | FuseConstants.DoReaddirplus
        | FuseConstants.ReaddirplusAuto | FuseConstants.AsyncDio | FuseConstants.ParallelDirops | FuseConstants.MaxPages;

    private const int ENOSYS = 38;
    private const int EPROTO = 71;

    private readonly FuseServerOptions _options = options ?? FuseServerOptions.Default;

    /// <summary>Answers one request; null when the protocol wants no answer (FORGET, BATCH_FORGET, INTERRUPT).</summary>
    /// <exception cref="FuseFormatException">The message breaks the protocol: the caller ends the mount's stream.</exception>
    public byte[]? Handle(ReadOnlyMemory<byte> message)
    {
        FuseInHeader header;
        FuseOperation op;
        try
        {
            (header, op) = FuseRequestParser.Parse(message);
        }
        catch (FuseRequestException bad)
        {
            return FuseReply.Error(FuseRequestParser.ReadHeader(message.Span).Unique, bad.Error);
        }

        var unique = header.Unique;
        var node = header.NodeId;
        var caller = new VfsCaller(header.Uid, header.Gid);
        using var context = VfsRequestContext.Enter(caller);
        return op switch
        {
            InitOp init => Init(unique, init),
            DestroyOp => FuseReply.Empty(unique),
            ForgetOp forget => Forget(node, forget.Lookups),
            BatchForgetOp batch => BatchForget(batch),
            InterruptOp => null, // requests finish quickly; the kernel needs no answer to an INTERRUPT
            LookupOp lookup => Entry(unique, provider.Lookup(node, lookup.Name)),
            GetAttrOp => Attr(unique, provider.GetAttr(node)),
            SetAttrOp set => Attr(unique, provider.SetAttr(node, Changes(set))),
            ReadLinkOp => Bytes(unique, provider.ReadLink(node)),
            SymlinkOp symlink => Entry(unique, provider.Symlink(node, symlink.Name, symlink.Target, caller)),
            MkNodOp mknod => Entry(unique, provider.Mknod(node, mknod.Name, mknod.Mode, mknod.Rdev, caller)),
            MkDirOp mkdir => Entry(unique, provider.Mkdir(node, mkdir.Name, mkdir.Mode, caller)),
            UnlinkOp unlink => Status(unique, provider.Unlink(node, unlink.Name)),
            RmDirOp rmdir => Status(unique, provider.Rmdir(node, rmdir.Name)),
            RenameOp rename => Status(unique, provider.Rename(node, rename.OldName, rename.NewParent, rename.NewName, (VfsRenameFlags)rename.Flags)),
            LinkOp link => Entry(unique, provider.Link(link.Target, node, link.NewName)),
            OpenOp { Directory: false } open => Opened(unique, provider.Open(node, (int)open.Flags)),
            OpenOp => Opened(unique, provider.OpenDir(node)),
            CreateOp create => Created(unique, provider.Create(node, create.Name, create.Mode, (int)create.Flags, caller)),
            ReadOp read => Read(unique, node, read),
            WriteOp write => Written(unique, provider.Write(node, write.Handle, (long)write.Offset, write.Data.Span)),
            ReadDirOp list => ReadDir(unique, node, list),
            ReleaseOp { Directory: false } release => Status(unique, provider.Release(node, release.Handle)),
            ReleaseOp release => Status(unique, provider.ReleaseDir(node, release.Handle)),
            // Writes reach the provider as they happen and locks are the guest kernel's, so a close has
            // nothing to flush: ENOSYS once makes the kernel stop sending FLUSH (a round trip per close).
            FlushOp => FuseReply.Error(unique, (Errno)ENOSYS),
            FsyncOp { Directory: false } fsync => Status(unique, provider.Fsync(node, fsync.Handle, fsync.DataOnly)),
            FsyncOp => FuseReply.Empty(unique),
            StatFsOp => StatFs(unique, provider.StatFs(node)),
            SetXattrOp set => Status(unique, provider.SetXattr(node, set.Name, set.Value.Span, (int)set.Flags)),
            GetXattrOp get => Sized(unique, provider.GetXattr(node, get.Name), get.Size),
            ListXattrOp list => Sized(unique, Names(provider.ListXattr(node)), list.Size),
            RemoveXattrOp remove => Status(unique, provider.RemoveXattr(node, remove.Name)),
            FallocateOp fallocate => Status(unique, provider.Fallocate(node, fallocate.Handle, (int)fallocate.Mode, (long)fallocate.Offset, (long)fallocate.Length)),
            _ => FuseReply.Error(unique, (Errno)ENOSYS), // ACCESS, locks, LSEEK and what we do not implement
        };
    }

    private static byte[] Init(ulong unique, InitOp init)
    {
        if (init.Major != FuseConstants.KernelVersion || init.Minor < 26)
        {
            // Another major (or a kernel too old for what we answer): the mount fails rather than misreads.
            return FuseReply.Error(unique, (Errno)EPROTO);
        }

        return FuseReply.Init(unique, init.Flags, init.MaxReadahead, WantedFlags);
    }

    private byte[]? Forget(ulong node, ulong lookups)
    {
        provider.Forget(node, lookups);
        return null;
    }

    private byte[]? BatchForget(BatchForgetOp batch)
    {
        foreach (var (node, lookups) in batch.Nodes)
        {
            provider.Forget(node, lookups);
        }

        return null;
    }

    private static VfsSetAttr Changes(SetAttrOp set) => new()
    {
        Mode = set.Has(FuseConstants.SetMode) ? set.Mode : null,
        Uid = set.Has(FuseConstants.SetUid) ? set.Uid : null,
        Gid = set.Has(FuseConstants.SetGid) ? set.Gid : null,
        Size = set.Has(FuseConstants.SetSize) ? set.Size : null,
        Atime = set.Has(FuseConstants.SetAtime) && !set.Has(FuseConstants.SetAtimeNow) ? new VfsTime(set.Atime, set.AtimeNs) : null,
        AtimeNow = set.Has(FuseConstants.SetAtimeNow),
        Mtime = set.Has(FuseConstants.SetMtime) && !set.Has(FuseConstants.SetMtimeNow) ? new VfsTime(set.Mtime, set.MtimeNs) : null,
        MtimeNow = set.Has(FuseConstants.SetMtimeNow),
        Handle = set.Has(FuseConstants.SetFh) ? set.Handle : null,
    };

    private byte[] Entry(ulong unique, VfsResult<VfsEntry> result) =>
        result.IsOk ? FuseReply.Entry(unique, ToFuse(result.Value)) : FuseReply.Error(unique, result.Error);

    private byte[] Attr(ulong unique, VfsResult<VfsAttr> result) =>
        result.IsOk ? FuseReply.Attr(unique, _options.AttrValid, ToFuse(result.Value)) : FuseReply.Error(unique, result.Error);

    private static byte[] Bytes(ulong unique, VfsResult<byte[]> result) =>
        result.IsOk ? FuseReply.Data(unique, result.Value) : FuseReply.Error(unique, result.Error);

    private static byte[] Status(ulong unique, Errno error) => error == Errno.None ? FuseReply.Empty(unique) : FuseReply.Error(unique, error);

    private static byte[] Opened(ulong unique, VfsResult<ulong> result) =>
        result.IsOk ? FuseReply.Open(unique, result.Value, openFlags: 0) : FuseReply.Error(unique, result.Error);

    private byte[] Created(ulong unique, VfsResult<VfsCreated> result) =>
        result.IsOk ? FuseReply.Create(unique, ToFuse(result.Value.Entry), result.Value.Handle, openFlags: 0) : FuseReply.Error(unique, result.Error);

    private static byte[] Written(ulong unique, VfsResult<int> result) =>
        result.IsOk ? FuseReply.Written(unique, (uint)result.Value) : FuseReply.Error(unique, result.Error);

    private byte[] Read(ulong unique, ulong node, ReadOp read)
    {
        var size = (int)Math.Min(read.Size, (uint)FuseConstants.MaxWrite);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            var result = provider.Read(node, read.Handle, (long)read.Offset, buffer.AsSpan(0, size));
            return result.IsOk ? FuseReply.Data(unique, buffer.AsSpan(0, result.Value)) : FuseReply.Error(unique, result.Error);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private byte[] ReadDir(ulong unique, ulong node, ReadDirOp list)
    {
        var entries = new List<FuseDirEntry>();
        var used = 0;
        var error = provider.ReadDir(node, list.Handle, list.Offset, list.Plus, (in VfsDirEntry e) =>
        {
            var record = ((list.Plus ? FuseConstants.EntryOutSize : 0) + FuseConstants.DirentHeaderSize + e.Name.Length + 7) & ~7;
            if (used + record > list.Size)
            {
                return false; // full: the provider gives back this entry's lookup
            }

            used += record;
            entries.Add(new FuseDirEntry(e.Ino, e.Offset, e.Type, e.Name, e.Entry is { } looked ? ToFuse(looked) : null));
            return true;
        });
        return error == Errno.None ? FuseReply.Directory(unique, entries, list.Size, list.Plus).Reply : FuseReply.Error(unique, error);
    }

    private static byte[] StatFs(ulong unique, VfsResult<VfsStatFs> result)
    {
        if (!result.IsOk)
        {
            return FuseReply.Error(unique, result.Error);
        }

        var s = result.Value;
        return FuseReply.StatFs(unique, s.Blocks, s.BlocksFree, s.BlocksAvailable, s.Files, s.FilesFree, s.BlockSize, s.NameLength);
    }

    /// <summary>GETXATTR / LISTXATTR: size 0 asks for the length; a smaller buffer is ERANGE.</summary>
    private static byte[] Sized(ulong unique, VfsResult<byte[]> result, uint size)
    {
        if (!result.IsOk)
        {
            return FuseReply.Error(unique, result.Error);
        }

        var value = result.Value;
        return size == 0 ? FuseReply.XattrSize(unique, (uint)value.Length)
            : value.Length > size ? FuseReply.Error(unique, Errno.ERANGE)
            : FuseReply.Data(unique, value);
    }

    private static VfsResult<byte[]> Names(VfsResult<IReadOnlyList<string>> names)
    {
        if (!names.IsOk)
        {
            return names.Error;
        }

        var bytes = new List<byte>();
        foreach (var name in names.Value)
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(name));
            bytes.Add(0);
        }

        return bytes.ToArray();
    }

    private FuseEntry ToFuse(VfsEntry entry) => new(entry.NodeId, Generation: 0, _options.EntryValid, _options.AttrValid, ToFuse(entry.Attr));

    private static FuseAttr ToFuse(VfsAttr a) => new(
        a.Ino, a.Size, a.Blocks, a.Atime.Seconds, a.Atime.Nanoseconds, a.Mtime.Seconds, a.Mtime.Nanoseconds, a.Ctime.Seconds, a.Ctime.Nanoseconds,
        a.Mode, a.Nlink, a.Uid, a.Gid, a.Rdev, a.BlockSize);
}
