using System.Buffers.Binary;
using System.Text;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Fuse;
using Matchlock.Core.Vfs.VhostUser;

namespace Matchlock.Core.Tests.Vfs.VhostUser;

/// <summary>
/// Our vhost-user-fs back-end (docs/VFS.md "vhost-user transport") driven by an in-process
/// front-end over the real protocol and shared memory: FUSE requests on virtqueues answered from
/// a memory provider, and a hostile guest's rings (bad addresses, loops, wrong order, lies about
/// sizes) answered without a crash or a hang.
/// </summary>
public sealed class VhostUserBackendTests : IAsyncLifetime
{
    private const int Hiprio = 0;
    private const int Requests = 1;
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(300);

    private readonly MemoryProvider _provider = new();
    private FakeFrontend _fe = null!;
    private ulong _unique;

    public async ValueTask InitializeAsync()
    {
        _fe = await FakeFrontend.ConnectAsync(new FuseServer(_provider));
        _fe.SetUp();
    }

    public async ValueTask DisposeAsync()
    {
        await _fe.DisposeAsync();
        _provider.Dispose();
    }

    private byte[] Header(FuseOpcode op, ulong node, int bodyLength)
    {
        var h = new byte[FuseConstants.InHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)(FuseConstants.InHeaderSize + bodyLength));
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), (uint)op);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(8), ++_unique);
        BinaryPrimitives.WriteUInt64LittleEndian(h.AsSpan(16), node);
        return h;
    }

    private static byte[] Z(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    private static int Error(byte[] reply) => BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(4));

    private static byte[] Cat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private (uint Length, byte[] Reply) Init()
    {
        var body = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(body, 7);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), 31);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), 131072);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(12), FuseConstants.AsyncRead | FuseConstants.MaxPages);
        return _fe.Request(Requests, [Cat(Header(FuseOpcode.Init, 0, body.Length), body)], [16, 64]);
    }

    /// <summary>CREATE name under the root; returns (node, handle).</summary>
    private (ulong Node, ulong Handle) Create(string name)
    {
        var body = Cat(new byte[16], Z(name));
        BinaryPrimitives.WriteUInt32LittleEndian(body, 2); // O_RDWR
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), 0x81A4); // S_IFREG | 0644
        var (length, reply) = _fe.Request(Requests, [Header(FuseOpcode.Create, 1, body.Length), body], [16, FuseConstants.EntryOutSize + FuseConstants.OpenOutSize]);
        Assert.Equal((uint)(16 + FuseConstants.EntryOutSize + FuseConstants.OpenOutSize), length);
        Assert.Equal(0, Error(reply));
        return (BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(16)), BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(16 + FuseConstants.EntryOutSize)));
    }

    private static byte[] ReadWriteIn(ulong handle, ulong offset, uint size)
    {
        var b = new byte[40];
        BinaryPrimitives.WriteUInt64LittleEndian(b, handle);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), offset);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), size);
        return b;
    }

    /// <summary>A request the back-end must still answer: it is alive and the queue goes on.</summary>
    private void AssertServing()
    {
        var (length, reply) = _fe.Request(Requests, [Cat(Header(FuseOpcode.GetAttr, 1, 16), new byte[16])], [FuseConstants.OutHeaderSize + FuseConstants.AttrOutSize]);
        Assert.Equal((uint)(16 + FuseConstants.AttrOutSize), length);
        Assert.Equal(0, Error(reply));
    }

    [Fact]
    public void Init_lookup_create_write_split_and_read_scattered_round_trip()
    {
        var (length, reply) = Init();
        Assert.Equal(16u + 64, length);
        Assert.Equal(0, Error(reply));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(16)));

        var missing = _fe.Request(Requests, [Header(FuseOpcode.Lookup, 1, 8), Z("missing")], [16, FuseConstants.EntryOutSize]);
        Assert.Equal(16u, missing.Length);
        Assert.Equal(-2, Error(missing.Reply)); // ENOENT

        var (node, handle) = Create("f");
        var data = Enumerable.Range(0, 10000).Select(i => (byte)(i * 7)).ToArray();
        // The header, the write_in and the payload in three descriptors, the payload itself split in two.
        var written = _fe.Request(
            Requests,
            [Header(FuseOpcode.Write, node, 40 + data.Length), ReadWriteIn(handle, 0, (uint)data.Length), data[..3000], data[3000..]],
            [16, 8]);
        Assert.Equal(24u, written.Length);
        Assert.Equal(0, Error(written.Reply));
        Assert.Equal((uint)data.Length, BinaryPrimitives.ReadUInt32LittleEndian(written.Reply.AsSpan(16)));

        // The reply scattered over the out header and three data buffers of odd sizes.
        var read = _fe.Request(Requests, [Header(FuseOpcode.Read, node, 40), ReadWriteIn(handle, 0, (uint)data.Length)], [16, 4096, 1000, 4904]);
        Assert.Equal((uint)(16 + data.Length), read.Length);
        Assert.Equal(0, Error(read.Reply));
        Assert.Equal(data, read.Reply[16..]);

        var looked = _fe.Request(Requests, [Header(FuseOpcode.Lookup, 1, 2), Z("f")], [16, FuseConstants.EntryOutSize], viaIndirect: true);
        Assert.Equal(0, Error(looked.Reply));
        Assert.Equal(node, BinaryPrimitives.ReadUInt64LittleEndian(looked.Reply.AsSpan(16)));
    }

    [Fact]
    public void Hiprio_forget_is_completed_without_a_reply()
    {
        Init();
        var (node, _) = Create("g");
        var body = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(body, 1);
        var forget = _fe.Request(Hiprio, [Header(FuseOpcode.Forget, node, 8), body], []);
        Assert.Equal(0u, forget.Length);
        AssertServing();
    }

    [Fact]
    public void Descriptors_outside_guest_memory_or_overflowing_complete_empty_and_the_queue_goes_on()
    {
        Init();
        var table = FakeFrontend.RingDesc(Requests);
        foreach (var (address, length) in new (ulong, uint)[]
        {
            (0, 64), // below the region
            (FakeFrontend.GuestBase + FakeFrontend.MemorySize - 8, 64), // runs past its end
            (ulong.MaxValue - 16, 64), // address + length overflows
            (FakeFrontend.GuestBase + 4096, uint.MaxValue), // longer than the region
        })
        {
            _fe.Descriptor(table, 0, address, length, 0, 0);
            _fe.Publish(Requests, 0);
            Assert.Equal((0u, 0u), _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5)));
        }

        AssertServing();
    }

    [Fact]
    public void Loops_long_chains_nested_indirect_and_readable_after_writable_complete_empty()
    {
        Init();
        var table = FakeFrontend.RingDesc(Requests);
        var buffer = _fe.Alloc(64);

        // 0 -> 1 -> 0 -> ...: a loop.
        _fe.Descriptor(table, 0, buffer, 64, SplitVirtqueue.DescNext, 1);
        _fe.Descriptor(table, 1, buffer, 64, SplitVirtqueue.DescNext, 0);
        _fe.Publish(Requests, 0);
        Assert.Equal((0u, 0u), _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5)));

        // A next index outside the table.
        _fe.Descriptor(table, 0, buffer, 64, SplitVirtqueue.DescNext, FakeFrontend.QueueSize);
        _fe.Publish(Requests, 0);
        Assert.Equal((0u, 0u), _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5)));

        // Readable after writable.
        _fe.Descriptor(table, 0, buffer, 64, SplitVirtqueue.DescNext | SplitVirtqueue.DescWrite, 1);
        _fe.Descriptor(table, 1, buffer, 64, 0, 0);
        _fe.Publish(Requests, 0);
        Assert.Equal((0u, 0u), _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5)));

        // An indirect table that loops on itself, one that nests, and one of a bad size.
        var indirect = _fe.Alloc(64);
        _fe.Descriptor(indirect, 0, buffer, 8, SplitVirtqueue.DescNext, 1);
        _fe.Descriptor(indirect, 1, buffer, 8, SplitVirtqueue.DescNext, 0);
        foreach (var (flags, length) in new (ushort, uint)[] { (SplitVirtqueue.DescIndirect, 32), (SplitVirtqueue.DescIndirect, 33), (SplitVirtqueue.DescIndirect | SplitVirtqueue.DescNext, 32) })
        {
            _fe.Descriptor(table, 0, indirect, length, flags, 0);
            _fe.Publish(Requests, 0);
            Assert.Equal((0u, 0u), _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5)));
        }

        _fe.Descriptor(indirect, 0, indirect, 32, SplitVirtqueue.DescIndirect, 0);
        _fe.Descriptor(table, 0, indirect, 32, SplitVirtqueue.DescIndirect, 0);
        _fe.Publish(Requests, 0);
        Assert.Equal((0u, 0u), _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5)));

        AssertServing();
    }

    [Fact]
    public void A_reply_bigger_than_the_writable_part_is_an_EIO_header_and_a_request_without_a_header_completes_empty()
    {
        Init();
        var (length, reply) = _fe.Request(Requests, [Cat(Header(FuseOpcode.GetAttr, 1, 16), new byte[16])], [20]);
        Assert.Equal(16u, length);
        Assert.Equal(-5, Error(reply));

        var tooSmall = _fe.Request(Requests, [Cat(Header(FuseOpcode.GetAttr, 1, 16), new byte[16])], [8]);
        Assert.Equal(0u, tooSmall.Length);

        var noHeader = _fe.Request(Requests, [new byte[10]], [200]);
        Assert.Equal(0u, noHeader.Length);

        // A header whose length lies about the message: a format error, answered EIO.
        var lying = Header(FuseOpcode.GetAttr, 1, 1000);
        var answer = _fe.Request(Requests, [Cat(lying, new byte[16])], [200]);
        Assert.Equal(16u, answer.Length);
        Assert.Equal(-5, Error(answer.Reply));
        AssertServing();
    }

    [Fact]
    public void A_broken_available_ring_stops_only_that_queue()
    {
        Init();
        _fe.PublishIndex(Requests, 1000); // far more than the queue holds
        Assert.Null(_fe.WaitUsed(Requests, Short));

        // The hiprio queue still works.
        var body = new byte[8];
        var forget = _fe.Request(Hiprio, [Header(FuseOpcode.Forget, 99, 8), body], []);
        Assert.Equal(0u, forget.Length);
    }

    [Fact]
    public void A_head_outside_the_table_stops_the_queue_without_a_crash()
    {
        Init();
        _fe.Publish(Requests, FakeFrontend.QueueSize + 3);
        Assert.Null(_fe.WaitUsed(Requests, Short));
        Assert.False(_fe.Backend.Completion.IsCompleted);
    }

    [Fact]
    public void Random_descriptor_tables_never_crash_or_hang_the_back_end()
    {
        Init();
        var random = new Random(1234);
        var table = FakeFrontend.RingDesc(Requests);
        var buffer = _fe.Alloc(4096);
        for (var round = 0; round < 300; round++)
        {
            for (var i = 0; i < FakeFrontend.QueueSize; i++)
            {
                var address = random.Next(4) switch
                {
                    0 => (ulong)random.NextInt64(),
                    1 => buffer + (ulong)random.Next(4096),
                    2 => table,
                    _ => buffer,
                };
                var flags = (ushort)random.Next(8);
                var length = random.Next(3) == 0 ? (uint)random.Next() : (uint)random.Next(200);
                _fe.Descriptor(table, i, address, length, flags, (ushort)random.Next(FakeFrontend.QueueSize + 2));
            }

            // Random request bytes where the buffer is read.
            var junk = new byte[4096];
            random.NextBytes(junk);
            if (random.Next(2) == 0)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(junk, (uint)random.Next(40, 300));
            }

            _fe.Write(buffer, junk);
            _fe.Publish(Requests, (ushort)random.Next(FakeFrontend.QueueSize));
            var used = _fe.WaitUsed(Requests, TimeSpan.FromSeconds(5));
            Assert.NotNull(used);
        }

        AssertServing();
    }
}
