using System.Buffers.Binary;
using System.Text;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Fuse;

namespace Matchlock.Core.Tests.Vfs.Fuse;

/// <summary>
/// The FUSE wire codec (docs/VFS.md): requests parsed as untrusted input (every length checked,
/// names one component), replies laid out as the kernel's structs. A malformed message is a
/// format error (the mount's stream ends); a bad name is an errno for that request only.
/// </summary>
public sealed class FuseCodecTests
{
    private static byte[] Request(FuseOpcode op, ulong unique, ulong node, params byte[][] parts)
    {
        var body = parts.SelectMany(p => p).ToArray();
        var message = new byte[FuseConstants.InHeaderSize + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), (uint)op);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), unique);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(16), node);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(24), 1000);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(28), 100);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(32), 4242);
        body.CopyTo(message, FuseConstants.InHeaderSize);
        return message;
    }

    private static byte[] U32(params uint[] values) => values.SelectMany(v => BitConverter.GetBytes(v)).ToArray();

    private static byte[] U64(params ulong[] values) => values.SelectMany(v => BitConverter.GetBytes(v)).ToArray();

    private static byte[] Z(string text) => [.. Encoding.UTF8.GetBytes(text), 0];

    [Fact]
    public void The_header_and_a_lookup_are_read()
    {
        var (header, op) = FuseRequestParser.Parse(Request(FuseOpcode.Lookup, 77, 5, Z("src")));
        Assert.Equal(new FuseInHeader((uint)(FuseConstants.InHeaderSize + 4), FuseOpcode.Lookup, 77, 5, 1000, 100, 4242), header);
        Assert.Equal("src"u8.ToArray(), Assert.IsType<LookupOp>(op).Name);
    }

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("a/b")]
    [InlineData("")]
    public void A_name_that_is_not_one_component_is_an_errno_for_that_request(string name)
    {
        var error = Assert.Throws<FuseRequestException>(() => FuseRequestParser.Parse(Request(FuseOpcode.Lookup, 1, 1, Z(name))));
        Assert.Equal(Errno.EINVAL, error.Error);
    }

    [Fact]
    public void Names_are_bytes_and_long_ones_are_refused()
    {
        var latin1 = new byte[] { 0x63, 0xE9, 0 }; // not UTF-8: still a valid Linux name
        Assert.Equal(latin1[..2], Assert.IsType<UnlinkOp>(FuseRequestParser.Parse(Request(FuseOpcode.Unlink, 1, 1, latin1)).Operation).Name);
        var tooLong = Assert.Throws<FuseRequestException>(() => FuseRequestParser.Parse(Request(FuseOpcode.MkDir, 1, 1, U32(0x1ED, 0x12), Z(new string('x', 4096)))));
        Assert.Equal(Errno.ENAMETOOLONG, tooLong.Error);
    }

    [Fact]
    public void Lengths_that_do_not_add_up_are_format_errors()
    {
        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(new byte[10]));
        var lying = Request(FuseOpcode.Lookup, 1, 1, Z("a"));
        BinaryPrimitives.WriteUInt32LittleEndian(lying, 4000);
        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(lying));
        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(Request(FuseOpcode.Lookup, 1, 1, "abc"u8.ToArray()))); // no NUL
        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(Request(FuseOpcode.GetAttr, 1, 1, U32(1)))); // short body
        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(Request(FuseOpcode.BatchForget, 1, 1, U32(1_000_000, 0))));
    }

    [Fact]
    public void A_write_carries_exactly_its_data()
    {
        var data = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        var fixedPart = U64(9, 4096).Concat(U32(300, 1)).Concat(U64(0)).Concat(U32(0x8001, 0)).ToArray();
        var op = Assert.IsType<WriteOp>(FuseRequestParser.Parse(Request(FuseOpcode.Write, 3, 2, fixedPart, data)).Operation);
        Assert.Equal((9UL, 4096UL, 1U, 0x8001U), (op.Handle, op.Offset, op.WriteFlags, op.Flags));
        Assert.Equal(data, op.Data.ToArray());

        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(Request(FuseOpcode.Write, 3, 2, fixedPart, data[..299])));
        var huge = U64(9, 0).Concat(U32(FuseConstants.MaxWrite + 1, 0)).Concat(U64(0)).Concat(U32(0, 0)).ToArray();
        Assert.Throws<FuseFormatException>(() => FuseRequestParser.Parse(Request(FuseOpcode.Write, 3, 2, huge)));
    }

    [Fact]
    public void Setattr_rename2_create_symlink_and_locks_read_their_fields_where_the_kernel_puts_them()
    {
        var setattr = U32(FuseConstants.SetMode | FuseConstants.SetSize | FuseConstants.SetMtime, 0)
            .Concat(U64(5, 1234, 0, 111, 222, 333)).Concat(U32(1, 2, 3, 0x81A4, 0, 1000, 1001, 0)).ToArray();
        var sa = Assert.IsType<SetAttrOp>(FuseRequestParser.Parse(Request(FuseOpcode.SetAttr, 1, 2, setattr)).Operation);
        Assert.True(sa.Has(FuseConstants.SetMode) && sa.Has(FuseConstants.SetSize) && !sa.Has(FuseConstants.SetUid));
        Assert.Equal((5UL, 1234UL, 111L, 1U, 222L, 2U, 0x81A4U, 1000U, 1001U), (sa.Handle, sa.Size, sa.Atime, sa.AtimeNs, sa.Mtime, sa.MtimeNs, sa.Mode, sa.Uid, sa.Gid));

        var rename = Assert.IsType<RenameOp>(FuseRequestParser.Parse(Request(FuseOpcode.Rename2, 1, 2, U64(7), U32(1, 0), Z("old"), Z("new"))).Operation);
        Assert.Equal((7UL, "old", "new", 1U), (rename.NewParent, Encoding.UTF8.GetString(rename.OldName), Encoding.UTF8.GetString(rename.NewName), rename.Flags));

        var create = Assert.IsType<CreateOp>(FuseRequestParser.Parse(Request(FuseOpcode.Create, 1, 2, U32(0x241, 0x1A4, 0x12, 0), Z("f"))).Operation);
        Assert.Equal((0x241U, 0x1A4U, 0x12U), (create.Flags, create.Mode, create.Umask));

        var symlink = Assert.IsType<SymlinkOp>(FuseRequestParser.Parse(Request(FuseOpcode.Symlink, 1, 2, Z("link"), Z("/etc/passwd"))).Operation);
        Assert.Equal("/etc/passwd", Encoding.UTF8.GetString(symlink.Target)); // stored as text, never resolved by the server

        var lk = Assert.IsType<LockOp>(FuseRequestParser.Parse(Request(FuseOpcode.SetLkW, 1, 2, U64(4, 99, 0, ulong.MaxValue), U32(1, 321, 0, 0))).Operation);
        Assert.Equal((FuseOpcode.SetLkW, 4UL, 99UL, 0UL, ulong.MaxValue, 1U, 321U), (lk.Kind, lk.Handle, lk.Owner, lk.Start, lk.End, lk.Type, lk.Pid));
        Assert.IsType<UnsupportedOp>(FuseRequestParser.Parse(Request((FuseOpcode)39, 1, 1)).Operation); // IOCTL: ENOSYS
    }

    [Fact]
    public void Random_bodies_for_every_opcode_end_in_a_parse_a_format_error_or_an_errno_never_anything_else()
    {
        var random = new Random(1234);
        foreach (var op in Enum.GetValues<FuseOpcode>())
        {
            for (var i = 0; i < 300; i++)
            {
                var body = new byte[random.Next(0, 200)];
                random.NextBytes(body);
                try
                {
                    FuseRequestParser.Parse(Request(op, 1, 1, body));
                }
                catch (Exception ex) when (ex is FuseFormatException or FuseRequestException)
                {
                    // expected for most
                }
            }
        }
    }

    [Fact]
    public void Replies_have_the_kernels_layout()
    {
        var error = FuseReply.Error(5, Errno.ENOENT);
        Assert.Equal(16, error.Length);
        Assert.Equal(-2, BinaryPrimitives.ReadInt32LittleEndian(error.AsSpan(4)));
        Assert.Equal(5UL, BinaryPrimitives.ReadUInt64LittleEndian(error.AsSpan(8)));

        var attr = new FuseAttr(Ino: 42, Size: 10, Blocks: 8, Atime: 1, AtimeNs: 2, Mtime: 3, MtimeNs: 4, Ctime: 5, CtimeNs: 6, Mode: 0x81A4, Nlink: 1, Uid: 1000, Gid: 100, Rdev: 0, BlockSize: 4096);
        var entry = FuseReply.Entry(6, new FuseEntry(9, 1, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(1), attr));
        Assert.Equal(16 + 128, entry.Length);
        Assert.Equal(9UL, BinaryPrimitives.ReadUInt64LittleEndian(entry.AsSpan(16)));
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(entry.AsSpan(32))); // entry_valid seconds
        Assert.Equal(500_000_000U, BinaryPrimitives.ReadUInt32LittleEndian(entry.AsSpan(48))); // entry_valid_nsec
        Assert.Equal(42UL, BinaryPrimitives.ReadUInt64LittleEndian(entry.AsSpan(56))); // attr.ino
        Assert.Equal(0x81A4U, BinaryPrimitives.ReadUInt32LittleEndian(entry.AsSpan(56 + 60))); // attr.mode

        var init = FuseReply.Init(1, kernelFlags: FuseConstants.AsyncRead | FuseConstants.PosixLocks | (1u << 20), maxReadahead: 131072, wantedFlags: FuseConstants.AsyncRead | FuseConstants.PosixLocks | FuseConstants.FlockLocks);
        Assert.Equal(FuseConstants.AsyncRead | FuseConstants.PosixLocks, BinaryPrimitives.ReadUInt32LittleEndian(init.AsSpan(16 + 12))); // only what both sides have
        Assert.Equal((uint)FuseConstants.MaxWrite, BinaryPrimitives.ReadUInt32LittleEndian(init.AsSpan(16 + 20)));
    }

    [Fact]
    public void A_directory_reply_takes_whole_padded_entries_until_the_buffer_is_full()
    {
        var entries = Enumerable.Range(0, 10).Select(i => new FuseDirEntry((ulong)(100 + i), (ulong)(i + 1), 8, Encoding.UTF8.GetBytes($"file-{i}"))).ToList();
        var (reply, count) = FuseReply.Directory(3, entries, size: 100, plus: false);
        Assert.Equal(3, count); // each "file-N" record is 24 + 6 = 30, padded to 32
        Assert.Equal(16 + (3 * 32), reply.Length);
        Assert.Equal(102UL, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(16 + 64)));
        Assert.Equal(3UL, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(16 + 64 + 8))); // next offset

        var (plus, plusCount) = FuseReply.Directory(3, entries, size: 4096, plus: true);
        Assert.Equal(10, plusCount);
        Assert.Equal(16 + (10 * (128 + 32)), plus.Length);
    }
}
