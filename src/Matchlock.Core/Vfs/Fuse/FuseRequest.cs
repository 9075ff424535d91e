using System.Buffers.Binary;
using System.Text;

namespace Matchlock.Core.Vfs.Fuse;

/// <summary>The fixed header of every FUSE request.</summary>
internal readonly record struct FuseInHeader(uint Length, FuseOpcode Opcode, ulong Unique, ulong NodeId, uint Uid, uint Gid, uint Pid);

/// <summary>What one request asks, parsed from its bytes (docs/VFS.md). Names are single path components.</summary>
internal abstract record FuseOperation;

internal sealed record InitOp(uint Major, uint Minor, uint MaxReadahead, uint Flags) : FuseOperation;

internal sealed record DestroyOp : FuseOperation;

internal sealed record LookupOp(byte[] Name) : FuseOperation;

internal sealed record ForgetOp(ulong Lookups) : FuseOperation;

internal sealed record BatchForgetOp(IReadOnlyList<(ulong NodeId, ulong Lookups)> Nodes) : FuseOperation;

internal sealed record GetAttrOp(ulong? Handle) : FuseOperation;

/// <summary>SETATTR: <see cref="Valid"/> says which fields mean something (FuseConstants.Set*).</summary>
internal sealed record SetAttrOp(uint Valid, ulong Handle, ulong Size, long Atime, uint AtimeNs, long Mtime, uint MtimeNs, uint Mode, uint Uid, uint Gid) : FuseOperation
{
    public bool Has(uint bit) => (Valid & bit) != 0;
}

internal sealed record ReadLinkOp : FuseOperation;

internal sealed record SymlinkOp(byte[] Name, byte[] Target) : FuseOperation;

internal sealed record MkNodOp(byte[] Name, uint Mode, uint Rdev, uint Umask) : FuseOperation;

internal sealed record MkDirOp(byte[] Name, uint Mode, uint Umask) : FuseOperation;

internal sealed record UnlinkOp(byte[] Name) : FuseOperation;

internal sealed record RmDirOp(byte[] Name) : FuseOperation;

/// <summary>RENAME and RENAME2: <see cref="Flags"/> is renameat2's (RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4).</summary>
internal sealed record RenameOp(ulong NewParent, byte[] OldName, byte[] NewName, uint Flags) : FuseOperation;

internal sealed record LinkOp(ulong Target, byte[] NewName) : FuseOperation;

internal sealed record OpenOp(uint Flags, bool Directory) : FuseOperation;

internal sealed record CreateOp(byte[] Name, uint Flags, uint Mode, uint Umask) : FuseOperation;

internal sealed record ReadOp(ulong Handle, ulong Offset, uint Size) : FuseOperation;

internal sealed record WriteOp(ulong Handle, ulong Offset, ReadOnlyMemory<byte> Data, uint WriteFlags, uint Flags) : FuseOperation;

internal sealed record ReadDirOp(ulong Handle, ulong Offset, uint Size, bool Plus) : FuseOperation;

internal sealed record ReleaseOp(ulong Handle, uint Flags, bool Directory) : FuseOperation;

internal sealed record FlushOp(ulong Handle, ulong LockOwner) : FuseOperation;

internal sealed record FsyncOp(ulong Handle, bool DataOnly, bool Directory) : FuseOperation;

internal sealed record StatFsOp : FuseOperation;

internal sealed record AccessOp(uint Mask) : FuseOperation;

internal sealed record SetXattrOp(string Name, ReadOnlyMemory<byte> Value, uint Flags) : FuseOperation;

internal sealed record GetXattrOp(string Name, uint Size) : FuseOperation;

internal sealed record ListXattrOp(uint Size) : FuseOperation;

internal sealed record RemoveXattrOp(string Name) : FuseOperation;

/// <summary>GETLK, SETLK, SETLKW (POSIX locks) and, with FUSE_LK_FLOCK in <see cref="LockFlags"/>, flock.</summary>
internal sealed record LockOp(FuseOpcode Kind, ulong Handle, ulong Owner, ulong Start, ulong End, uint Type, uint Pid, uint LockFlags) : FuseOperation;

internal sealed record InterruptOp(ulong Unique) : FuseOperation;

internal sealed record FallocateOp(ulong Handle, ulong Offset, ulong Length, uint Mode) : FuseOperation;

internal sealed record LseekOp(ulong Handle, ulong Offset, uint Whence) : FuseOperation;

/// <summary>An opcode this server does not implement: answered ENOSYS.</summary>
internal sealed record UnsupportedOp(uint Opcode) : FuseOperation;

/// <summary>The message breaks the protocol (lengths that do not add up): the mount's stream ends.</summary>
internal sealed class FuseFormatException(string message) : OperationFailedException(message);

/// <summary>The message is well-framed but this request is invalid (a bad name): answered with <see cref="Error"/>.</summary>
internal sealed class FuseRequestException(Errno error, string message) : OperationFailedException(message)
{
    public Errno Error { get; } = error;
}

/// <summary>
/// Parses FUSE requests as untrusted input: every length and offset is checked against the
/// message; names must be NUL-terminated inside it and pass <see cref="VfsName.Check"/> (kept as
/// bytes: Linux names need not be UTF-8); extended attribute names are UTF-8 text.
/// </summary>
internal static class FuseRequestParser
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <exception cref="FuseFormatException">The header or the body's layout is wrong.</exception>
    public static FuseInHeader ReadHeader(ReadOnlySpan<byte> message)
    {
        if (message.Length < FuseConstants.InHeaderSize)
        {
            throw new FuseFormatException($"a request of {message.Length} bytes is shorter than the FUSE header");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(message);
        if (length != message.Length)
        {
            throw new FuseFormatException($"the header says {length} bytes, the message has {message.Length}");
        }

        return new FuseInHeader(
            length,
            (FuseOpcode)BinaryPrimitives.ReadUInt32LittleEndian(message[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(message[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(message[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(message[24..]),
            BinaryPrimitives.ReadUInt32LittleEndian(message[28..]),
            BinaryPrimitives.ReadUInt32LittleEndian(message[32..]));
    }

    /// <summary>Parses one whole request (header included).</summary>
    /// <exception cref="FuseFormatException">The message breaks the protocol.</exception>
    /// <exception cref="FuseRequestException">A name (or value) in it is invalid.</exception>
    public static (FuseInHeader Header, FuseOperation Operation) Parse(ReadOnlyMemory<byte> message)
    {
        var header = ReadHeader(message.Span);
        var body = new Body(message[FuseConstants.InHeaderSize..]);
        FuseOperation op = header.Opcode switch
        {
            FuseOpcode.Init => new InitOp(body.U32(0), body.U32(4), body.U32(8), body.U32(12)),
            FuseOpcode.Destroy => new DestroyOp(),
            FuseOpcode.Lookup => new LookupOp(body.Name(0)),
            FuseOpcode.Forget => new ForgetOp(body.U64(0)),
            FuseOpcode.BatchForget => BatchForget(body),
            FuseOpcode.GetAttr => new GetAttrOp((body.U32(0) & 1) != 0 ? body.U64(8) : null), // FUSE_GETATTR_FH
            FuseOpcode.SetAttr => new SetAttrOp(
                body.U32(0), body.U64(8), body.U64(16), (long)body.U64(32), body.U32(56), (long)body.U64(40), body.U32(60), body.U32(68), body.U32(76), body.U32(80)),
            FuseOpcode.ReadLink => new ReadLinkOp(),
            FuseOpcode.Symlink => Symlink(body),
            FuseOpcode.MkNod => new MkNodOp(body.Name(16), body.U32(0), body.U32(4), body.U32(8)),
            FuseOpcode.MkDir => new MkDirOp(body.Name(8), body.U32(0), body.U32(4)),
            FuseOpcode.Unlink => new UnlinkOp(body.Name(0)),
            FuseOpcode.RmDir => new RmDirOp(body.Name(0)),
            FuseOpcode.Rename => Rename(body, 8, flags: 0),
            FuseOpcode.Rename2 => Rename(body, 16, body.U32(8)),
            FuseOpcode.Link => new LinkOp(body.U64(0), body.Name(8)),
            FuseOpcode.Open => new OpenOp(body.U32(0), Directory: false),
            FuseOpcode.OpenDir => new OpenOp(body.U32(0), Directory: true),
            FuseOpcode.Create => new CreateOp(body.Name(16), body.U32(0), body.U32(4), body.U32(8)),
            FuseOpcode.Read => new ReadOp(body.U64(0), body.U64(8), body.U32(16)),
            FuseOpcode.Write => Write(body),
            FuseOpcode.ReadDir => new ReadDirOp(body.U64(0), body.U64(8), body.U32(16), Plus: false),
            FuseOpcode.ReadDirPlus => new ReadDirOp(body.U64(0), body.U64(8), body.U32(16), Plus: true),
            FuseOpcode.Release => new ReleaseOp(body.U64(0), body.U32(8), Directory: false),
            FuseOpcode.ReleaseDir => new ReleaseOp(body.U64(0), body.U32(8), Directory: true),
            FuseOpcode.Flush => new FlushOp(body.U64(0), body.U64(16)),
            FuseOpcode.Fsync => new FsyncOp(body.U64(0), (body.U32(8) & 1) != 0, Directory: false),
            FuseOpcode.FsyncDir => new FsyncOp(body.U64(0), (body.U32(8) & 1) != 0, Directory: true),
            FuseOpcode.StatFs => new StatFsOp(),
            FuseOpcode.Access => new AccessOp(body.U32(0)),
            FuseOpcode.SetXattr => SetXattr(body),
            FuseOpcode.GetXattr => new GetXattrOp(XattrName(body, 8), body.U32(0)),
            FuseOpcode.ListXattr => new ListXattrOp(body.U32(0)),
            FuseOpcode.RemoveXattr => new RemoveXattrOp(XattrName(body, 0)),
            FuseOpcode.GetLk or FuseOpcode.SetLk or FuseOpcode.SetLkW => new LockOp(
                header.Opcode, body.U64(0), body.U64(8), body.U64(16), body.U64(24), body.U32(32), body.U32(36), body.U32(40)),
            FuseOpcode.Interrupt => new InterruptOp(body.U64(0)),
            FuseOpcode.Fallocate => new FallocateOp(body.U64(0), body.U64(8), body.U64(16), body.U32(24)),
            FuseOpcode.Lseek => new LseekOp(body.U64(0), body.U64(8), body.U32(16)),
            _ => new UnsupportedOp((uint)header.Opcode),
        };
        return (header, op);
    }

    private static BatchForgetOp BatchForget(Body body)
    {
        var count = body.U32(0);
        if (count > (body.Length - 8) / 16)
        {
            throw new FuseFormatException($"BATCH_FORGET of {count} nodes does not fit its {body.Length} bytes");
        }

        var nodes = new (ulong, ulong)[count];
        for (var i = 0; i < count; i++)
        {
            nodes[i] = (body.U64(8 + (i * 16)), body.U64(16 + (i * 16)));
        }

        return new BatchForgetOp(nodes);
    }

    private static SymlinkOp Symlink(Body body)
    {
        var (name, next) = body.NameAt(0);
        var target = body.BytesToNul(next);
        return target.Length is 0 or > 4095
            ? throw new FuseRequestException(Errno.EINVAL, "a symlink target must be 1 to 4095 bytes")
            : new SymlinkOp(name, target);
    }

    private static RenameOp Rename(Body body, int namesAt, uint flags)
    {
        var (oldName, next) = body.NameAt(namesAt);
        var (newName, _) = body.NameAt(next);
        return new RenameOp(body.U64(0), oldName, newName, flags);
    }

    private static WriteOp Write(Body body)
    {
        var size = body.U32(16);
        const int Fixed = 40;
        if (size > FuseConstants.MaxWrite || Fixed + (long)size != body.Length)
        {
            throw new FuseFormatException($"a WRITE of {size} bytes does not match its {body.Length}-byte body");
        }

        return new WriteOp(body.U64(0), body.U64(8), body.Slice(Fixed, (int)size), body.U32(20), body.U32(32));
    }

    private static SetXattrOp SetXattr(Body body)
    {
        // Without FUSE_SETXATTR_EXT (we never ask for it) the fixed part is {size, flags}.
        var size = body.U32(0);
        var (name, next) = body.XattrNameAt(8);
        if (size > 64 * 1024 || next + (long)size > body.Length)
        {
            throw new FuseFormatException($"a SETXATTR value of {size} bytes does not fit its message");
        }

        return new SetXattrOp(name, body.Slice(next, (int)size), body.U32(4));
    }

    private static string XattrName(Body body, int offset) => body.XattrNameAt(offset).Name;

    /// <summary>A request's body with bounds-checked reads; any read past its end is a format error.</summary>
    private readonly struct Body(ReadOnlyMemory<byte> bytes)
    {
        public int Length => bytes.Length;

        public uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(Span(offset, 4));

        public ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(Span(offset, 8));

        public ReadOnlyMemory<byte> Slice(int offset, int length) =>
            offset >= 0 && length >= 0 && offset + (long)length <= bytes.Length
                ? bytes.Slice(offset, length)
                : throw new FuseFormatException($"{length} bytes at {offset} are past the end of a {bytes.Length}-byte body");

        public byte[] Name(int offset) => NameAt(offset).Name;

        /// <summary>A path component at <paramref name="offset"/>; returns it and where the next field starts.</summary>
        public (byte[] Name, int Next) NameAt(int offset)
        {
            var raw = BytesToNul(offset);
            var problem = VfsName.Check(raw);
            return problem == Errno.None
                ? (raw, offset + raw.Length + 1)
                : throw new FuseRequestException(problem, $"a name of {raw.Length} bytes is not a single path component");
        }

        /// <summary>An extended attribute's name (dots allowed, 1 to 255 bytes).</summary>
        public (string Name, int Next) XattrNameAt(int offset)
        {
            var raw = BytesToNul(offset);
            return raw.Length is 0 or > 255
                ? throw new FuseRequestException(raw.Length == 0 ? Errno.EINVAL : Errno.ERANGE, "an extended attribute name must be 1 to 255 bytes")
                : (Decode(raw), offset + raw.Length + 1);
        }

        public byte[] BytesToNul(int offset)
        {
            if (offset < 0 || offset > bytes.Length)
            {
                throw new FuseFormatException($"a string at {offset} is past the end of a {bytes.Length}-byte body");
            }

            var rest = bytes.Span[offset..];
            var end = rest.IndexOf((byte)0);
            return end < 0 ? throw new FuseFormatException("a string in the request has no terminating NUL") : rest[..end].ToArray();
        }

        private ReadOnlySpan<byte> Span(int offset, int length) =>
            offset + length <= bytes.Length
                ? bytes.Span.Slice(offset, length)
                : throw new FuseFormatException($"a field at {offset} is past the end of a {bytes.Length}-byte body");

        private static string Decode(byte[] raw)
        {
            try
            {
                return StrictUtf8.GetString(raw);
            }
            catch (DecoderFallbackException)
            {
                throw new FuseRequestException(Errno.EINVAL, "an extended attribute name that is not valid UTF-8");
            }
        }
    }
}
