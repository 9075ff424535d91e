using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Fuse;
using Matchlock.Core.Vfs.VhostUser;

namespace Matchlock.Core.Tests.Vfs.VhostUser;

/// <summary>
/// The vhost-user control channel fails closed (docs/VFS.md "vhost-user transport"): a message
/// we do not implement, a broken one, or a front-end that vanishes mid-message ends the
/// connection with a reason, never a crash or a hang.
/// </summary>
public sealed class VhostUserProtocolTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static async Task<string> EndsWith(Action<FakeFrontend> act)
    {
        using var provider = new MemoryProvider();
        await using var fe = await FakeFrontend.ConnectAsync(new FuseServer(provider));
        act(fe);
        return await fe.Backend.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public async Task An_unknown_message_ends_the_connection()
    {
        var reason = await EndsWith(fe => fe.SendRaw(31, 1, [])); // GET_INFLIGHT_FD: not offered
        Assert.Contains("unsupported message 31", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Features_never_offered_end_the_connection()
    {
        var reason = await EndsWith(fe => fe.Send(VhostUserRequest.SetFeatures, FakeFrontend.U64(1UL << 29))); // EVENT_IDX
        Assert.Contains("beyond", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_front_end_vanishing_inside_a_message_ends_the_connection()
    {
        var reason = await EndsWith(fe =>
        {
            var header = new byte[12];
            BitConverter.GetBytes(5u).CopyTo(header, 0);
            BitConverter.GetBytes(1u).CopyTo(header, 4);
            BitConverter.GetBytes(40u).CopyTo(header, 8);
            fe.Socket.Send(header.AsSpan(0, 12));
            fe.Socket.Send(new byte[7]);
            fe.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
        });
        Assert.Contains("disconnected inside a message", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_memory_table_without_its_descriptors_or_of_a_wrong_size_ends_the_connection()
    {
        var reason = await EndsWith(fe => fe.Send(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(0, 4096, 0, 0)));
        Assert.Contains("descriptors", reason, StringComparison.Ordinal);
        reason = await EndsWith(fe => fe.Send(VhostUserRequest.SetVringNum, new byte[7]));
        Assert.Contains("SetVringNum", reason, StringComparison.Ordinal);
        reason = await EndsWith(fe => fe.Send(VhostUserRequest.SetVringNum, FakeFrontend.State(9, 16)));
        Assert.Contains("queue 9", reason, StringComparison.Ordinal);
        reason = await EndsWith(fe => fe.SendRaw(1, 1, new byte[5000]));
        Assert.Contains("payload", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ring_outside_guest_memory_does_not_start_and_get_vring_base_still_answers()
    {
        using var provider = new MemoryProvider();
        await using var fe = await FakeFrontend.ConnectAsync(new FuseServer(provider));
        fe.Send(VhostUserRequest.SetProtocolFeatures, FakeFrontend.U64(1UL << VhostUserConstants.ProtocolReplyAck));
        var memory = Interop.VhostNative.MemFd("other", FakeFrontend.MemorySize);
        fe.Acked(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(FakeFrontend.GuestBase, FakeFrontend.MemorySize, FakeFrontend.UserBase, 0), memory);
        _ = Interop.VhostNative.Close(memory);
        fe.Acked(VhostUserRequest.SetVringNum, FakeFrontend.State(1, 16));
        fe.Acked(VhostUserRequest.SetVringAddr, FakeFrontend.Addr(1, FakeFrontend.UserBase + FakeFrontend.MemorySize - 8, FakeFrontend.UserBase, FakeFrontend.UserBase));
        var kick = Interop.VhostNative.EventFd();
        fe.Acked(VhostUserRequest.SetVringKick, FakeFrontend.U64(1), kick);
        var reply = fe.Call(VhostUserRequest.GetVringBase, FakeFrontend.State(1, 0));
        Assert.Equal(FakeFrontend.State(1, 0), reply);
        Assert.False(fe.Backend.Completion.IsCompleted);
        _ = Interop.VhostNative.Close(kick);
    }

    [Fact]
    public async Task Stopping_and_restarting_a_ring_keeps_its_position()
    {
        using var provider = new MemoryProvider();
        await using var fe = await FakeFrontend.ConnectAsync(new FuseServer(provider));
        fe.SetUp();
        var body = new byte[8];
        var header = new byte[40];
        BitConverter.GetBytes(48u).CopyTo(header, 0);
        BitConverter.GetBytes((uint)FuseOpcode.Forget).CopyTo(header, 4);
        Assert.Equal(0u, fe.Request(0, [header, body], []).Length);
        Assert.Equal(FakeFrontend.State(0, 1), fe.Call(VhostUserRequest.GetVringBase, FakeFrontend.State(0, 0)));
        var kick = Interop.VhostNative.EventFd();
        fe.Acked(VhostUserRequest.SetVringKick, FakeFrontend.U64(0), kick);
        _ = Interop.VhostNative.Close(kick);
        Assert.Equal(FakeFrontend.State(0, 1), fe.Call(VhostUserRequest.GetVringBase, FakeFrontend.State(0, 0)));
    }
}
