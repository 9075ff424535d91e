using System.Text;
using Matchlock.Protocol.Framing;

namespace Matchlock.Protocol.Tests;

/// <summary>
/// Issue 11 part 5: a peer that resets, corrupts or abandons one stream ends that stream with an
/// error naming what happened, never a wait without end; the link and its other streams go on.
/// A peer that breaks the framing itself ends the whole link with a protocol error.
/// </summary>
public sealed class StreamFailureTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task ReplyOk(MuxStream stream) =>
        await stream.SendReplyAsync("ok"u8.ToArray(), CancellationToken.None);

    [Fact]
    public async Task A_handler_that_returns_without_replying_resets_its_stream()
    {
        // The guest's exec handler used to be able to end this way (and the owner's control
        // handler did, when the guest reset the exec under it): the opener waited for a reply forever.
        await using var pair = new PairedConnections(s => s.Request.Span[0] == (byte)'?' ? Task.CompletedTask : ReplyOk(s));

        await using var silent = await pair.Host.OpenAsync("?"u8.ToArray(), Ct);
        var ex = await Assert.ThrowsAsync<MuxStreamResetException>(() => silent.Reply.WaitAsync(Bound, Ct));
        Assert.Contains("without a reply", ex.Message, StringComparison.Ordinal);

        await using var next = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        Assert.Equal("ok", Encoding.UTF8.GetString((await next.Reply.WaitAsync(Bound, Ct)).Span));
    }

    [Fact]
    public async Task A_reset_ends_pending_reads_writes_and_the_reply_of_that_stream_only()
    {
        var resetNow = new TaskCompletionSource();
        await using var pair = new PairedConnections(async s =>
        {
            if (s.Request.Span[0] == (byte)'r')
            {
                await resetNow.Task;
                await s.ResetAsync("guest gave up", CancellationToken.None);
                return;
            }

            await ReplyOk(s);
        }, new MuxOptions { InitialWindow = 16 });

        await using var doomed = await pair.Host.OpenAsync("r"u8.ToArray(), Ct);
        var read = doomed.ReadAsync(StreamChannel.Stdout, new byte[8], Ct).AsTask();
        var write = doomed.WriteAsync(StreamChannel.Stdin, new byte[64], Ct).AsTask(); // more than the window: waits for credit
        resetNow.SetResult();

        await Assert.ThrowsAsync<MuxStreamResetException>(() => read.WaitAsync(Bound, Ct));
        await Assert.ThrowsAsync<MuxStreamResetException>(() => write.WaitAsync(Bound, Ct));
        var ex = await Assert.ThrowsAsync<MuxStreamResetException>(() => doomed.Reply.WaitAsync(Bound, Ct));
        Assert.Contains("guest gave up", ex.Message, StringComparison.Ordinal);

        await using var next = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        Assert.Equal("ok", Encoding.UTF8.GetString((await next.Reply.WaitAsync(Bound, Ct)).Span));
        Assert.False(pair.Host.IsClosed);
    }

    [Fact]
    public async Task Frames_for_a_stream_that_was_never_opened_close_the_link_with_a_protocol_error()
    {
        await using var pair = new PairedConnections(ReplyOk);
        await using var open = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        var frame = new byte[FrameHeader.Size + 3];
        new FrameHeader(3, 41, FrameType.Data, StreamChannel.Stdout).Write(frame); // the host never opened 41
        await pair.GuestToHostRaw.WriteAsync(frame, Ct);
        await pair.GuestToHostRaw.FlushAsync(Ct);

        var ex = await Assert.ThrowsAsync<MuxProtocolException>(() => pair.Host.Completion.WaitAsync(Bound, Ct));
        Assert.Contains("stream 41", ex.Message, StringComparison.Ordinal);
        Assert.Contains("never opened", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Frames_for_a_stream_that_already_ended_are_ignored()
    {
        await using var pair = new PairedConnections(ReplyOk);
        await using var done = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        await done.Reply.WaitAsync(Bound, Ct);

        // Late credit or data after the reply is a race, not an attack: the link stays up.
        var frame = new byte[FrameHeader.Size + 3];
        new FrameHeader(3, done.Id, FrameType.Data, StreamChannel.Stdout).Write(frame);
        await pair.GuestToHostRaw.WriteAsync(frame, Ct);
        await pair.GuestToHostRaw.FlushAsync(Ct);

        await using var next = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        Assert.Equal("ok", Encoding.UTF8.GetString((await next.Reply.WaitAsync(Bound, Ct)).Span));
        Assert.False(pair.Host.IsClosed);
    }

    [Fact]
    public async Task An_oversized_frame_closes_the_link_and_fails_every_open_stream()
    {
        var started = new TaskCompletionSource();
        await using var pair = new PairedConnections(async s =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
        });
        await using var open = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        await started.Task.WaitAsync(Bound, Ct);
        var header = new byte[FrameHeader.Size];
        new FrameHeader(0, open.Id, FrameType.Data, StreamChannel.Stdout).Write(header);
        header[3] = 0x10; // 256 MiB: over the frame limit
        await pair.GuestToHostRaw.WriteAsync(header, Ct);
        await pair.GuestToHostRaw.FlushAsync(Ct);

        var ex = await Assert.ThrowsAsync<MuxConnectionClosedException>(() => open.Reply.WaitAsync(Bound, Ct));
        Assert.Contains("payload length", ex.Message, StringComparison.Ordinal);
    }
}
