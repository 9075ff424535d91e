using System.Buffers.Binary;
using System.Text;
using Matchlock.Guest.Interop;
using Matchlock.Guest.Tests;
using Matchlock.Integration.Tests;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Integration.Tests;

/// <summary>
/// vfs_mount for real on the host's kernel (root and /dev/fuse, no VM): the agent mounts FUSE in
/// a temporary directory and relays; the test plays the host's FUSE server by hand (INIT,
/// GETATTR of the root, LOOKUP of one file) and checks what a stat in the mount sees. Whatever
/// happens, the mount is detached at the end.
/// </summary>
public sealed class VfsMountTests
{
    // include/uapi/linux/fuse.h opcodes.
    private const uint FuseLookup = 1;
    private const uint FuseForget = 2;
    private const uint FuseGetattr = 3;
    private const uint FuseInit = 26;
    private const uint FuseBatchForget = 42;
    private const int Enosys = 38;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_mount_relays_the_kernels_requests_to_the_host_and_its_replies_back()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        if (!File.Exists("/dev/fuse"))
        {
            HostPrerequisites.SkipOrFail("no /dev/fuse on this host (modprobe fuse)");
        }

        await using var harness = new AgentHarness();
        var target = Path.Combine(harness.Root, "workspace/repo");
        try
        {
            var stream = await harness.OpenAsync(new VfsMountRequest { MountId = "ws", Path = "/workspace/repo" });
            var ready = new byte[64];
            var n = await stream.ReadAsync(StreamChannel.Stderr, ready, Token).AsTask().WaitAsync(ProcessTestSupport.TestTimeout, Token);
            Assert.Equal("ok\n", Encoding.UTF8.GetString(ready, 0, n));
            Assert.Contains($" {target} fuse ", File.ReadAllText("/proc/self/mounts"), StringComparison.Ordinal);

            var served = new List<uint>();
            var server = ServeAsync(stream, served);
            var file = Path.Combine(target, "hello");
            var length = await Task.Run(() => new FileInfo(file).Length, Token).WaitAsync(ProcessTestSupport.TestTimeout, Token);
            Assert.Equal(5, length);
            Assert.Contains(FuseInit, served);
            Assert.Contains(FuseLookup, served);

            // The host closes the mount: the guest unmounts and replies ok.
            await stream.WriteEofAsync(StreamChannel.Stdin, Token);
            var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
            Assert.True(reply.Ok, reply.Error);
            Assert.DoesNotContain($" {target} ", File.ReadAllText("/proc/self/mounts"), StringComparison.Ordinal);
            await server.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        }
        finally
        {
            _ = Libc.umount2(target, LibcConstants.MNT_DETACH);
        }
    }

    [Fact]
    public async Task A_mount_point_that_cannot_be_created_fails_with_an_error_line_and_a_failure_reply()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        await using var harness = new AgentHarness();
        File.WriteAllText(Path.Combine(harness.Root, "file"), "not a directory");

        var stream = await harness.OpenAsync(new VfsMountRequest { MountId = "ws", Path = "/file/below" });
        var stderr = await AgentHarness.ReadChannelAsync(stream, StreamChannel.Stderr);
        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.False(reply.Ok);
        Assert.StartsWith("error: vfs_mount ws", stderr, StringComparison.Ordinal);
        Assert.Equal("ENOTDIR", reply.ErrorCode);
    }

    /// <summary>A minimal host FUSE server: INIT, the root's and "hello"'s attributes, ENOSYS for the rest; until stdout ends.</summary>
    private static async Task ServeAsync(MuxStream stream, List<uint> served)
    {
        var pending = new List<byte>();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(StreamChannel.Stdout, chunk, Token)) > 0)
        {
            pending.AddRange(chunk.AsSpan(0, n));
            while (pending.Count >= 40 && BinaryPrimitives.ReadUInt32LittleEndian(pending.ToArray()) is var len && pending.Count >= len)
            {
                var request = pending.GetRange(0, (int)len).ToArray();
                pending.RemoveRange(0, (int)len);
                var opcode = BinaryPrimitives.ReadUInt32LittleEndian(request.AsSpan(4));
                var unique = BinaryPrimitives.ReadUInt64LittleEndian(request.AsSpan(8));
                lock (served)
                {
                    served.Add(opcode);
                }

                if (opcode is FuseForget or FuseBatchForget)
                {
                    continue; // no reply, by the protocol
                }

                var reply = opcode switch
                {
                    FuseInit => Reply(unique, 0, InitOut()),
                    FuseGetattr => Reply(unique, 0, AttrOut(BinaryPrimitives.ReadUInt64LittleEndian(request.AsSpan(16)))),
                    FuseLookup when Encoding.UTF8.GetString(request, 40, request.Length - 41) == "hello" => Reply(unique, 0, EntryOut(2)),
                    FuseLookup => Reply(unique, -2 /* ENOENT */, []),
                    _ => Reply(unique, -Enosys, []),
                };
                await stream.WriteAsync(StreamChannel.Stdin, reply, Token);
            }
        }
    }

    private static byte[] Reply(ulong unique, int error, byte[] body)
    {
        var reply = new byte[16 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)reply.Length);
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(4), error);
        BinaryPrimitives.WriteUInt64LittleEndian(reply.AsSpan(8), unique);
        body.CopyTo(reply, 16);
        return reply;
    }

    /// <summary>fuse_init_out (64 bytes): 7.31, no flags, max_write 128 KiB, time_gran 1.</summary>
    private static byte[] InitOut()
    {
        var body = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(body, 7);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), 31);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), 128 * 1024); // max_readahead
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(16), 16); // max_background
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(18), 12); // congestion_threshold
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(20), 128 * 1024); // max_write
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(24), 1); // time_gran
        return body;
    }

    /// <summary>fuse_attr (88 bytes): node 1 is a 0755 directory, any other a 0644 file of 5 bytes.</summary>
    private static byte[] Attr(ulong node)
    {
        var attr = new byte[88];
        BinaryPrimitives.WriteUInt64LittleEndian(attr, node); // ino
        BinaryPrimitives.WriteUInt64LittleEndian(attr.AsSpan(8), node == 1 ? 0u : 5u); // size
        BinaryPrimitives.WriteUInt32LittleEndian(attr.AsSpan(60), node == 1 ? 0x41EDu /* dir 0755 */ : 0x81A4u /* file 0644 */);
        BinaryPrimitives.WriteUInt32LittleEndian(attr.AsSpan(64), node == 1 ? 2u : 1u); // nlink
        BinaryPrimitives.WriteUInt32LittleEndian(attr.AsSpan(80), 4096); // blksize
        return attr;
    }

    /// <summary>fuse_attr_out: attr_valid 1 s, then the attributes.</summary>
    private static byte[] AttrOut(ulong node)
    {
        var body = new byte[16 + 88];
        BinaryPrimitives.WriteUInt64LittleEndian(body, 1);
        Attr(node).CopyTo(body, 16);
        return body;
    }

    /// <summary>fuse_entry_out: node id, generation, entry and attr validity 1 s, then the attributes.</summary>
    private static byte[] EntryOut(ulong node)
    {
        var body = new byte[40 + 88];
        BinaryPrimitives.WriteUInt64LittleEndian(body, node);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(16), 1);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(24), 1);
        Attr(node).CopyTo(body, 40);
        return body;
    }
}
