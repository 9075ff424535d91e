using System.Buffers.Binary;
using System.Text;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Fuse;

namespace Matchlock.Core.Tests.Vfs.Fuse;

/// <summary>
/// The FUSE server over a provider, driven as the guest's kernel would drive it: requests in the
/// kernel's layout, replies read back field by field. No VM: the relay only moves these bytes.
/// </summary>
public sealed class FuseServerTests : IDisposable
{
    private readonly MemoryProvider _memory = new();
    private readonly FuseServer _server;
    private ulong _unique;

    public FuseServerTests() => _server = new FuseServer(_memory);

    public void Dispose() => _memory.Dispose();

    private byte[]? Send(FuseOpcode op, ulong node, params byte[][] parts)
    {
        var body = parts.SelectMany(p => p).ToArray();
        var message = new byte[FuseConstants.InHeaderSize + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), (uint)op);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), ++_unique);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(16), node);
        body.CopyTo(message, FuseConstants.InHeaderSize);
        var reply = _server.Handle(message);
        if (reply is not null)
        {
            Assert.Equal((uint)reply.Length, BinaryPrimitives.ReadUInt32LittleEndian(reply));
            Assert.Equal(_unique, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(8)));
        }

        return reply;
    }

    private static int Error(byte[]? reply) => -BinaryPrimitives.ReadInt32LittleEndian(reply!.AsSpan(4));

    private static ReadOnlySpan<byte> Body(byte[]? reply) => reply.AsSpan(FuseConstants.OutHeaderSize);

    private static ulong NodeOf(byte[]? entry) => BinaryPrimitives.ReadUInt64LittleEndian(Body(entry));

    private static ulong SizeInEntry(byte[]? entry) => BinaryPrimitives.ReadUInt64LittleEndian(Body(entry)[(40 + 8)..]);

    private static byte[] U32(params uint[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    private static byte[] U64(params ulong[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    private static byte[] Z(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    private static byte[] ReadIn(ulong fh, ulong offset, uint size) => U64(fh, offset).Concat(U32(size, 0)).Concat(U64(0)).Concat(U32(0, 0)).ToArray();

    [Fact]
    public void Init_takes_only_what_both_sides_have_and_refuses_another_major()
    {
        var reply = Send(FuseOpcode.Init, 0, U32(7, 38, 131072, uint.MaxValue));
        Assert.Equal(0, Error(reply));
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(Body(reply)[12..]);
        Assert.Equal(FuseServer.WantedFlags, flags);
        Assert.Equal(0u, flags & (FuseConstants.PosixLocks | FuseConstants.FlockLocks)); // the guest's kernel keeps locks
        Assert.Equal(71, Error(Send(FuseOpcode.Init, 0, U32(8, 0, 0, 0))));
    }

    [Fact]
    public void A_project_is_made_written_read_listed_renamed_and_truncated_through_fuse()
    {
        var src = NodeOf(Send(FuseOpcode.MkDir, 1, U32(0x41ED, 0x12), Z("src")));
        var created = Send(FuseOpcode.Create, src, U32(0x41 /* O_CREAT|O_WRONLY */, 0x81A4, 0x12, 0), Z("main.c"));
        Assert.Equal(0, Error(created));
        var file = NodeOf(created);
        var handle = BinaryPrimitives.ReadUInt64LittleEndian(Body(created)[FuseConstants.EntryOutSize..]);

        var data = "int main(){}\n"u8.ToArray();
        var written = Send(FuseOpcode.Write, file, U64(handle, 0).Concat(U32((uint)data.Length, 0)).Concat(U64(0)).Concat(U32(0, 0)).ToArray(), data);
        Assert.Equal((uint)data.Length, BinaryPrimitives.ReadUInt32LittleEndian(Body(written)));
        Assert.Equal(0, Error(Send(FuseOpcode.Release, file, U64(handle).Concat(U32(0, 0)).Concat(U64(0)).ToArray())));

        var looked = Send(FuseOpcode.Lookup, src, Z("main.c"));
        Assert.Equal(file, NodeOf(looked));
        Assert.Equal((ulong)data.Length, SizeInEntry(looked));

        var opened = Send(FuseOpcode.Open, file, U32(0, 0));
        var readHandle = BinaryPrimitives.ReadUInt64LittleEndian(Body(opened));
        Assert.Equal(data, Body(Send(FuseOpcode.Read, file, ReadIn(readHandle, 0, 4096))).ToArray());
        Assert.Equal(data[4..], Body(Send(FuseOpcode.Read, file, ReadIn(readHandle, 4, 4096))).ToArray());

        var dirHandle = BinaryPrimitives.ReadUInt64LittleEndian(Body(Send(FuseOpcode.OpenDir, src, U32(0, 0))));
        var listing = Send(FuseOpcode.ReadDirPlus, src, ReadIn(dirHandle, 0, 4096));
        Assert.Contains("main.c", Encoding.UTF8.GetString(Body(listing)), StringComparison.Ordinal);

        Assert.Equal(0, Error(Send(FuseOpcode.Rename, src, U64(1), Z("main.c"), Z("moved.c"))));
        Assert.Equal(2, Error(Send(FuseOpcode.Lookup, src, Z("main.c")))); // ENOENT
        Assert.Equal(file, NodeOf(Send(FuseOpcode.Lookup, 1, Z("moved.c"))));

        var truncated = Send(FuseOpcode.SetAttr, file, U32(FuseConstants.SetSize, 0).Concat(U64(0, 4, 0, 0, 0, 0)).Concat(U32(0, 0, 0, 0, 0, 0, 0, 0)).ToArray());
        Assert.Equal(4UL, BinaryPrimitives.ReadUInt64LittleEndian(Body(truncated)[(16 + 8)..])); // attr_out.attr.size
    }

    [Fact]
    public void Bad_names_get_an_errno_forget_and_interrupt_get_no_answer_unknown_ops_get_enosys()
    {
        Assert.Equal(22, Error(Send(FuseOpcode.Lookup, 1, Z(".."))));
        Assert.Equal(22, Error(Send(FuseOpcode.MkDir, 1, U32(0x41ED, 0), Z("a/b"))));
        Assert.Null(Send(FuseOpcode.Forget, 1, U64(1)));
        Assert.Null(Send(FuseOpcode.BatchForget, 1, U32(1, 0), U64(1, 1)));
        Assert.Null(Send(FuseOpcode.Interrupt, 1, U64(5)));
        Assert.Equal(38, Error(Send((FuseOpcode)39, 1)));
        Assert.Equal(38, Error(Send(FuseOpcode.Access, 1, U32(4, 0))));
        Assert.Throws<FuseFormatException>(() => _server.Handle(new byte[12]));
    }

    [Fact]
    public void Xattr_sizes_are_probed_then_read_and_a_short_buffer_is_erange()
    {
        Assert.Equal(0, Error(Send(FuseOpcode.SetXattr, 1, U32(5, 0), Z("user.tag"), "hello"u8.ToArray())));
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(Body(Send(FuseOpcode.GetXattr, 1, U32(0, 0), Z("user.tag")))));
        Assert.Equal(34, Error(Send(FuseOpcode.GetXattr, 1, U32(2, 0), Z("user.tag"))));
        Assert.Equal("hello", Encoding.UTF8.GetString(Body(Send(FuseOpcode.GetXattr, 1, U32(64, 0), Z("user.tag")))));
        Assert.Equal("user.tag\0", Encoding.UTF8.GetString(Body(Send(FuseOpcode.ListXattr, 1, U32(64, 0)))));
    }

    [Fact]
    public void A_read_only_host_mount_refuses_creation_with_erofs()
    {
        var dir = Directory.CreateTempSubdirectory("matchlock-fuse-ro-");
        try
        {
            using var provider = HostFsProvider.Open(dir.FullName, readOnly: true);
            var server = new FuseServer(provider);
            var message = new byte[FuseConstants.InHeaderSize + 16 + 2];
            BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), (uint)FuseOpcode.Create);
            BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), 9);
            BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(16), 1);
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(40), 0x41);
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(44), 0x81A4);
            message[56] = (byte)'f';
            Assert.Equal(30, -BinaryPrimitives.ReadInt32LittleEndian(server.Handle(message).AsSpan(4)));
            Assert.Empty(dir.EnumerateFileSystemInfos());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
