using System.Buffers.Binary;
using Matchlock.Guest.Agent;
using Matchlock.Guest.Interop;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;

namespace Matchlock.Guest.Tests.Vfs;

/// <summary>
/// The guest's FUSE relay against a seqpacket socket standing in for /dev/fuse (no root, no
/// mount): framing both ways, and every way the relay ends.
/// </summary>
public sealed class FuseRelayTests
{
    private static CancellationToken Token => FuseTestKernel.Token;

    [Fact]
    public async Task Requests_from_the_device_go_out_on_stdout_unchanged_and_in_order()
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        byte[][] requests = [FuseTestKernel.Request(1, 40), FuseTestKernel.Request(2, 150_000), FuseTestKernel.Request(3, 64)];
        foreach (var request in requests)
        {
            kernel.Send(request);
        }

        var expected = requests.SelectMany(r => r).ToArray();
        var received = await ReadExactlyAsync(stream, StreamChannel.Stdout, expected.Length);
        Assert.Equal(expected, received);
    }

    [Fact]
    public async Task Replies_are_split_by_their_length_and_each_written_whole()
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        byte[][] replies = [FuseTestKernel.Reply(1, 0), FuseTestKernel.Reply(2, 100_000), FuseTestKernel.Reply(3, 80, error: -2), FuseTestKernel.Reply(4, 4096)];
        var bytes = replies.SelectMany(r => r).ToArray();

        // Back to back, cut at places that are not reply boundaries: mid-header, mid-body.
        int[] cuts = [3, 17, 60_000, 100_020, bytes.Length];
        var at = 0;
        foreach (var cut in cuts)
        {
            await stream.WriteAsync(StreamChannel.Stdin, bytes.AsMemory(at, cut - at), Token);
            at = cut;
        }

        foreach (var reply in replies)
        {
            Assert.Equal(reply, kernel.Receive());
        }

        Assert.False(kernel.HasReply(50));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(15u)]
    [InlineData(FuseRelay.MaxMessage + 1u)]
    [InlineData(uint.MaxValue)]
    public async Task A_reply_length_out_of_bounds_ends_the_relay_as_a_protocol_error(uint length)
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        var good = FuseTestKernel.Reply(1, 8);
        var bad = FuseTestKernel.Reply(2, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(bad, length);
        await stream.WriteAsync(StreamChannel.Stdin, good.Concat(bad).ToArray(), Token);

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.ProtocolError, outcome.End);
        Assert.Contains(length.ToString(System.Globalization.CultureInfo.InvariantCulture), outcome.Detail, StringComparison.Ordinal);
        Assert.Equal(good, kernel.Receive()); // what came before the bad one was delivered
        Assert.False(kernel.HasReply(50));
    }

    [Fact]
    public async Task Eof_on_stdin_ends_the_relay_and_stops_its_reader()
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        await stream.WriteAsync(StreamChannel.Stdin, FuseTestKernel.Reply(1, 8), Token);
        await stream.WriteEofAsync(StreamChannel.Stdin, Token);

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.HostClosed, outcome.End);
        Assert.Equal(FuseTestKernel.Reply(1, 8), kernel.Receive());

        // The reader no longer reads the device: a request sent now stays with the kernel.
        kernel.Send(FuseTestKernel.Request(9, 40));
        await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(0, await stream.ReadAsync(StreamChannel.Stdout, new byte[64], Token));
    }

    [Fact]
    public async Task Eof_inside_a_reply_is_a_protocol_error()
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        await stream.WriteAsync(StreamChannel.Stdin, FuseTestKernel.Reply(1, 100).AsMemory(0, 50), Token);
        await stream.WriteEofAsync(StreamChannel.Stdin, Token);

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.ProtocolError, outcome.End);
        Assert.False(kernel.HasReply(50));
    }

    [Fact]
    public async Task A_reply_the_device_refuses_with_ENOENT_is_dropped_and_the_relay_goes_on()
    {
        // The kernel answers ENOENT for a unique no longer waiting (an interrupted request).
        await using var kernel = new FuseTestKernel(device => new RefusingDevice(device, refusedUnique: 2, Errno.ENOENT));
        var stream = await kernel.OpenAsync();
        var replies = new[] { FuseTestKernel.Reply(1, 8), FuseTestKernel.Reply(2, 8), FuseTestKernel.Reply(3, 8) };
        await stream.WriteAsync(StreamChannel.Stdin, replies.SelectMany(r => r).ToArray(), Token);

        Assert.Equal(replies[0], kernel.Receive());
        Assert.Equal(replies[2], kernel.Receive());
        Assert.False(kernel.Outcome.IsCompleted);

        // Still relaying both ways.
        kernel.Send(FuseTestKernel.Request(4, 48));
        Assert.Equal(FuseTestKernel.Request(4, 48), await ReadExactlyAsync(stream, StreamChannel.Stdout, 48));
    }

    [Fact]
    public async Task Any_other_write_error_ends_the_relay()
    {
        await using var kernel = new FuseTestKernel(device => new RefusingDevice(device, refusedUnique: 1, Errno.EINVAL));
        var stream = await kernel.OpenAsync();
        await stream.WriteAsync(StreamChannel.Stdin, FuseTestKernel.Reply(1, 8), Token);

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.DeviceFailed, outcome.End);
        Assert.Contains("write /dev/fuse", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_device_ending_ends_the_relay_as_unmounted()
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        kernel.Send(FuseTestKernel.Request(1, 40));
        await ReadExactlyAsync(stream, StreamChannel.Stdout, 40);
        kernel.CloseKernel();

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.Unmounted, outcome.End);
        await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token);
    }

    [Fact]
    public async Task Stop_ends_the_relay_while_both_sides_wait()
    {
        await using var kernel = new FuseTestKernel();
        await kernel.OpenAsync();
        await WaitUntilAsync(() => kernel.HasRelay);
        kernel.Relay.Stop();

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.Stopped, outcome.End);
    }

    [Fact]
    public async Task A_reset_by_the_host_ends_the_relay_as_link_lost()
    {
        await using var kernel = new FuseTestKernel();
        var stream = await kernel.OpenAsync();
        await stream.ResetAsync("host gave up", Token);

        var outcome = await kernel.Outcome.WaitAsync(ProcessTestSupport.TestTimeout, Token);
        Assert.Equal(FuseRelayEnd.LinkLost, outcome.End);
    }

    private static async Task<byte[]> ReadExactlyAsync(MuxStream stream, byte channel, int count)
    {
        var buffer = new byte[count];
        var done = 0;
        while (done < count)
        {
            var n = await stream.ReadAsync(channel, buffer.AsMemory(done), Token).AsTask().WaitAsync(ProcessTestSupport.TestTimeout, Token);
            Assert.NotEqual(0, n);
            done += n;
        }

        return buffer;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + ProcessTestSupport.TestTimeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10, Token);
        }
    }

    /// <summary>A device whose writes of one reply (by unique) fail with an errno, as the kernel's would.</summary>
    private sealed class RefusingDevice(IFuseDevice inner, ulong refusedUnique, int errno) : IFuseDevice
    {
        public FuseReadStatus Read(Span<byte> buffer, out int length) => inner.Read(buffer, out length);

        public int Write(ReadOnlySpan<byte> message) =>
            BinaryPrimitives.ReadUInt64LittleEndian(message[8..]) == refusedUnique ? errno : inner.Write(message);

        public void Interrupt() => inner.Interrupt();

        public void Dispose() => inner.Dispose();
    }
}
