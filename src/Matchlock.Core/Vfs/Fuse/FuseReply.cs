using System.Buffers.Binary;

namespace Matchlock.Core.Vfs.Fuse;

/// <summary>A node's attributes as FUSE reports them (<c>struct fuse_attr</c>).</summary>
internal readonly record struct FuseAttr(
    ulong Ino, ulong Size, ulong Blocks, long Atime, uint AtimeNs, long Mtime, uint MtimeNs, long Ctime, uint CtimeNs,
    uint Mode, uint Nlink, uint Uid, uint Gid, uint Rdev, uint BlockSize)
{
    public void Write(Span<byte> to)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(to, Ino);
        BinaryPrimitives.WriteUInt64LittleEndian(to[8..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(to[16..], Blocks);
        BinaryPrimitives.WriteInt64LittleEndian(to[24..], Atime);
        BinaryPrimitives.WriteInt64LittleEndian(to[32..], Mtime);
        BinaryPrimitives.WriteInt64LittleEndian(to[40..], Ctime);
        BinaryPrimitives.WriteUInt32LittleEndian(to[48..], AtimeNs);
        BinaryPrimitives.WriteUInt32LittleEndian(to[52..], MtimeNs);
        BinaryPrimitives.WriteUInt32LittleEndian(to[56..], CtimeNs);
        BinaryPrimitives.WriteUInt32LittleEndian(to[60..], Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(to[64..], Nlink);
        BinaryPrimitives.WriteUInt32LittleEndian(to[68..], Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(to[72..], Gid);
        BinaryPrimitives.WriteUInt32LittleEndian(to[76..], Rdev);
        BinaryPrimitives.WriteUInt32LittleEndian(to[80..], BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(to[84..], 0); // flags
    }
}

/// <summary>A LOOKUP-style answer: the node, its generation, how long the kernel may cache the name and the attributes.</summary>
internal readonly record struct FuseEntry(ulong NodeId, ulong Generation, TimeSpan EntryValid, TimeSpan AttrValid, FuseAttr Attr)
{
    public void Write(Span<byte> to)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(to, NodeId);
        BinaryPrimitives.WriteUInt64LittleEndian(to[8..], Generation);
        WriteValid(to[16..], to[32..], EntryValid);
        WriteValid(to[24..], to[36..], AttrValid);
        Attr.Write(to[40..]);
    }

    internal static void WriteValid(Span<byte> seconds, Span<byte> nanoseconds, TimeSpan valid)
    {
        var ticks = Math.Max(0, valid.Ticks);
        BinaryPrimitives.WriteUInt64LittleEndian(seconds, (ulong)(ticks / TimeSpan.TicksPerSecond));
        BinaryPrimitives.WriteUInt32LittleEndian(nanoseconds, (uint)(ticks % TimeSpan.TicksPerSecond * 100));
    }
}

/// <summary>One directory entry for READDIR / READDIRPLUS.</summary>
internal readonly record struct FuseDirEntry(ulong Ino, ulong NextOffset, uint Type, byte[] Name, FuseEntry? Plus = null);

/// <summary>Builds FUSE replies (<c>fuse_out_header</c> + body), each for one request's <c>unique</c>.</summary>
internal static class FuseReply
{
    public static byte[] Error(ulong unique, Errno errno) => Build(unique, -Math.Abs((int)errno), 0, _ => { });

    public static byte[] Empty(ulong unique) => Build(unique, 0, 0, _ => { });

    public static byte[] Data(ulong unique, ReadOnlySpan<byte> data)
    {
        var reply = Build(unique, 0, data.Length, _ => { });
        data.CopyTo(reply.AsSpan(FuseConstants.OutHeaderSize));
        return reply;
    }

    public static byte[] Entry(ulong unique, FuseEntry entry) => Build(unique, 0, FuseConstants.EntryOutSize, b => entry.Write(b));

    public static byte[] Attr(ulong unique, TimeSpan valid, FuseAttr attr) => Build(unique, 0, FuseConstants.AttrOutSize, b =>
    {
        FuseEntry.WriteValid(b, b[8..], valid);
        attr.Write(b[16..]);
    });

    public static byte[] Open(ulong unique, ulong handle, uint openFlags) => Build(unique, 0, FuseConstants.OpenOutSize, b =>
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b, handle);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], openFlags);
    });

    public static byte[] Create(ulong unique, FuseEntry entry, ulong handle, uint openFlags) =>
        Build(unique, 0, FuseConstants.EntryOutSize + FuseConstants.OpenOutSize, b =>
        {
            entry.Write(b);
            BinaryPrimitives.WriteUInt64LittleEndian(b[FuseConstants.EntryOutSize..], handle);
            BinaryPrimitives.WriteUInt32LittleEndian(b[(FuseConstants.EntryOutSize + 8)..], openFlags);
        });

    public static byte[] Written(ulong unique, uint size) => Build(unique, 0, 8, b => BinaryPrimitives.WriteUInt32LittleEndian(b, size));

    /// <summary>GETXATTR / LISTXATTR asked with size 0: only how big the value is.</summary>
    public static byte[] XattrSize(ulong unique, uint size) => Written(unique, size);

    public static byte[] Offset(ulong unique, ulong offset) => Build(unique, 0, 8, b => BinaryPrimitives.WriteUInt64LittleEndian(b, offset));

    public static byte[] StatFs(ulong unique, ulong blocks, ulong freeBlocks, ulong availableBlocks, ulong files, ulong freeFiles, uint blockSize, uint nameMax) =>
        Build(unique, 0, FuseConstants.StatFsOutSize, b =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b, blocks);
            BinaryPrimitives.WriteUInt64LittleEndian(b[8..], freeBlocks);
            BinaryPrimitives.WriteUInt64LittleEndian(b[16..], availableBlocks);
            BinaryPrimitives.WriteUInt64LittleEndian(b[24..], files);
            BinaryPrimitives.WriteUInt64LittleEndian(b[32..], freeFiles);
            BinaryPrimitives.WriteUInt32LittleEndian(b[40..], blockSize);
            BinaryPrimitives.WriteUInt32LittleEndian(b[44..], nameMax);
            BinaryPrimitives.WriteUInt32LittleEndian(b[48..], blockSize); // frsize
        });

    public static byte[] Lock(ulong unique, ulong start, ulong end, uint type, uint pid) => Build(unique, 0, 24, b =>
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b, start);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], end);
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], type);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], pid);
    });

    /// <summary>INIT's answer: our version, the flags we accept of <paramref name="kernelFlags"/>, and our limits.</summary>
    public static byte[] Init(ulong unique, uint kernelFlags, uint maxReadahead, uint wantedFlags) => Build(unique, 0, FuseConstants.InitOutSize, b =>
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, FuseConstants.KernelVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], FuseConstants.KernelMinorVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], maxReadahead);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], kernelFlags & wantedFlags);
        BinaryPrimitives.WriteUInt16LittleEndian(b[16..], 64); // max_background
        BinaryPrimitives.WriteUInt16LittleEndian(b[18..], 48); // congestion_threshold
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], FuseConstants.MaxWrite);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], 1); // time_gran: nanoseconds
        BinaryPrimitives.WriteUInt16LittleEndian(b[28..], (ushort)(FuseConstants.MaxWrite / 4096)); // max_pages
    });

    /// <summary>
    /// As many entries as fit in <paramref name="size"/> bytes (the kernel's buffer), each padded
    /// to 8 bytes; READDIRPLUS entries carry their <see cref="FuseEntry"/> first. Returns the reply
    /// and how many entries it holds (the rest come with the next READDIR at their offset).
    /// </summary>
    public static (byte[] Reply, int Count) Directory(ulong unique, IEnumerable<FuseDirEntry> entries, uint size, bool plus)
    {
        var body = new List<byte[]>();
        var used = 0;
        foreach (var entry in entries)
        {
            var name = entry.Name;
            var record = (plus ? FuseConstants.EntryOutSize : 0) + FuseConstants.DirentHeaderSize + name.Length;
            var padded = (record + 7) & ~7;
            if (used + padded > size)
            {
                break;
            }

            var bytes = new byte[padded];
            var at = 0;
            if (plus)
            {
                // A null entry (e.g. for "." and "..") is all zeroes: the kernel then does not cache it.
                entry.Plus?.Write(bytes);
                at = FuseConstants.EntryOutSize;
            }

            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), entry.Ino);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at + 8), entry.NextOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 16), (uint)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 20), entry.Type);
            name.CopyTo(bytes, at + FuseConstants.DirentHeaderSize);
            body.Add(bytes);
            used += padded;
        }

        var reply = Build(unique, 0, used, _ => { });
        var offset = FuseConstants.OutHeaderSize;
        foreach (var bytes in body)
        {
            bytes.CopyTo(reply, offset);
            offset += bytes.Length;
        }

        return (reply, body.Count);
    }

    private delegate void BodyWriter(Span<byte> body);

    private static byte[] Build(ulong unique, int error, int bodyLength, BodyWriter write)
    {
        var reply = new byte[FuseConstants.OutHeaderSize + bodyLength];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)reply.Length);
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(4), error);
        BinaryPrimitives.WriteUInt64LittleEndian(reply.AsSpan(8), unique);
        write(reply.AsSpan(FuseConstants.OutHeaderSize));
        return reply;
    }
}
