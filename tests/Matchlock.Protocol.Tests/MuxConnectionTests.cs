using System.Security.Cryptography;
using System.Text;
using Matchlock.Protocol.Framing;

namespace Matchlock.Protocol.Tests;

public sealed class MuxConnectionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Guest handler: copies stdin to stdout, then replies with the byte count.</summary>
    private static async Task EchoHandler(MuxStream stream)
    {
        var buffer = new byte[8192];
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(StreamChannel.Stdin, buffer, CancellationToken.None)) > 0)
        {
            await stream.WriteAsync(StreamChannel.Stdout, buffer.AsMemory(0, n), CancellationToken.None);
            total += n;
        }

        await stream.WriteEofAsync(StreamChannel.Stdout, CancellationToken.None);
        await stream.SendReplyAsync(Encoding.UTF8.GetBytes(total.ToString(System.Globalization.CultureInfo.InvariantCulture)), CancellationToken.None);
    }

    [Fact]
    public async Task Hello_payload_reaches_the_host()
    {
        await using var pair = new PairedConnections(EchoHandler);
        await pair.Guest.SendHelloAsync("hi"u8.ToArray(), Ct);
        var hello = await pair.Host.WaitForHelloAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("hi", Encoding.UTF8.GetString(hello.Span));
    }

    [Fact]
    public async Task Opens_racing_from_many_threads_reach_the_peer_in_order_and_the_link_survives()
    {
        // The peer refuses an Open below one it has seen (a protocol error that closes the link);
        // opens from many threads at once must still arrive in id order. Several rounds, because
        // the race it guards against needs two threads between taking an id and writing it.
        await using var pair = new PairedConnections(EchoHandler);
        for (var round = 0; round < 20; round++)
        {
            using var start = new ManualResetEventSlim();
            var opens = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                start.Wait(Ct);
                var stream = await pair.Host.OpenAsync("echo"u8.ToArray(), Ct);
                await stream.WriteEofAsync(StreamChannel.Stdin, Ct);
                return stream;
            }, Ct)).ToArray();
            start.Set();
            foreach (var stream in await Task.WhenAll(opens).WaitAsync(Bound, Ct))
            {
                await using (stream)
                {
                    Assert.Equal("0", Encoding.UTF8.GetString((await stream.Reply.WaitAsync(Bound, Ct)).Span));
                }
            }
        }

        Assert.False(pair.Host.Completion.IsCompleted, "the link closed");
        Assert.False(pair.Guest.Completion.IsCompleted, "the link closed");
    }

    [Fact]
    public async Task Ten_megabytes_echo_intact_through_a_small_window()
    {
        // A 4 KiB window forces thousands of credit round trips: flow control must not lose or reorder bytes.
        await using var pair = new PairedConnections(EchoHandler, new MuxOptions { InitialWindow = 4096, MaxDataFrame = 1500 });
        var data = RandomNumberGenerator.GetBytes(10 * 1024 * 1024);
        await using var stream = await pair.Host.OpenAsync("echo"u8.ToArray(), Ct);

        var writer = Task.Run(async () =>
        {
            await stream.WriteAsync(StreamChannel.Stdin, data, Ct);
            await stream.WriteEofAsync(StreamChannel.Stdin, Ct);
        }, Ct);
        using var received = new MemoryStream();
        await stream.GetReadStream(StreamChannel.Stdout).CopyToAsync(received, Ct).WaitAsync(Bound, Ct);
        await writer;

        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received.ToArray()));
        var reply = await stream.Reply.WaitAsync(Bound, Ct);
        Assert.Equal(data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), Encoding.UTF8.GetString(reply.Span));
    }

    [Fact]
    public async Task A_writer_waits_for_credit_when_the_reader_does_not_read()
    {
        var release = new TaskCompletionSource();
        var handlerStream = new TaskCompletionSource<MuxStream>();
        await using var pair = new PairedConnections(async s =>
        {
            handlerStream.SetResult(s);
            await release.Task;
        }, new MuxOptions { InitialWindow = 1024, MaxDataFrame = 512 });

        await using var stream = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        var write = stream.WriteAsync(StreamChannel.Stdin, new byte[4096], Ct).AsTask();
        await Task.Delay(200, Ct); // deliberate: a window in which the writer must NOT finish
        Assert.False(write.IsCompleted, "the writer ran past the receiver's window");

        var guest = await handlerStream.Task.WaitAsync(Bound, Ct);
        var sink = new byte[4096];
        var read = 0;
        while (read < 4096)
        {
            read += await guest.ReadAsync(StreamChannel.Stdin, sink.AsMemory(read), Ct);
        }

        await write.WaitAsync(Bound, Ct);
        release.SetResult();
    }

    [Fact]
    public async Task A_stalled_stream_does_not_block_the_others()
    {
        var stalled = new TaskCompletionSource();
        await using var pair = new PairedConnections(async s =>
        {
            if (s.Request.Span[0] == (byte)'s')
            {
                await stalled.Task; // never reads its stdin
                return;
            }

            await EchoHandler(s);
        }, new MuxOptions { InitialWindow = 2048 });

        await using var stuck = await pair.Host.OpenAsync("s"u8.ToArray(), Ct);
        var stuckWrite = stuck.WriteAsync(StreamChannel.Stdin, new byte[64 * 1024], Ct).AsTask();

        var others = Enumerable.Range(0, 20).Select(async i =>
        {
            await using var s = await pair.Host.OpenAsync("e"u8.ToArray(), Ct);
            var payload = Encoding.UTF8.GetBytes(new string((char)('a' + i), 10_000));
            var write = Task.Run(async () =>
            {
                await s.WriteAsync(StreamChannel.Stdin, payload, Ct);
                await s.WriteEofAsync(StreamChannel.Stdin, Ct);
            }, Ct);
            using var ms = new MemoryStream();
            await s.GetReadStream(StreamChannel.Stdout).CopyToAsync(ms, Ct);
            await write;
            Assert.Equal(payload, ms.ToArray());
        });
        await Task.WhenAll(others).WaitAsync(Bound, Ct);

        Assert.False(stuckWrite.IsCompleted);
        stalled.SetResult();
    }

    [Fact]
    public async Task A_handler_that_throws_resets_its_stream_only()
    {
        await using var pair = new PairedConnections(s => s.Request.Span[0] == (byte)'!' ? throw new InvalidOperationException("boom") : EchoHandler(s));

        await using var bad = await pair.Host.OpenAsync("!"u8.ToArray(), Ct);
        var ex = await Assert.ThrowsAsync<MuxStreamResetException>(() => bad.Reply.WaitAsync(Bound, Ct));
        Assert.Contains("boom", ex.Message, StringComparison.Ordinal);

        await using var good = await pair.Host.OpenAsync("e"u8.ToArray(), Ct);
        await good.WriteEofAsync(StreamChannel.Stdin, Ct);
        var reply = await good.Reply.WaitAsync(Bound, Ct);
        Assert.Equal("0", Encoding.UTF8.GetString(reply.Span));
    }

    [Fact]
    public async Task Losing_the_link_fails_pending_reads_and_replies()
    {
        var started = new TaskCompletionSource();
        await using var pair = new PairedConnections(async s =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, CancellationToken.None);
        });
        await using var stream = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        await started.Task.WaitAsync(Bound, Ct);
        var read = stream.ReadAsync(StreamChannel.Stdout, new byte[10], Ct).AsTask();

        await pair.BreakLinkAsync();

        await Assert.ThrowsAsync<MuxConnectionClosedException>(() => read.WaitAsync(Bound, Ct));
        await Assert.ThrowsAsync<MuxConnectionClosedException>(() => stream.Reply.WaitAsync(Bound, Ct));
        await Assert.ThrowsAsync<MuxConnectionClosedException>(async () => await pair.Host.OpenAsync("y"u8.ToArray(), Ct));
    }

    [Fact]
    public async Task Eof_is_seen_only_after_all_data_before_it()
    {
        await using var pair = new PairedConnections(async s =>
        {
            for (var i = 0; i < 100; i++)
            {
                await s.WriteAsync(StreamChannel.Stderr, new[] { (byte)i }, CancellationToken.None);
            }

            await s.WriteEofAsync(StreamChannel.Stderr, CancellationToken.None);
            await s.SendReplyAsync("{}"u8.ToArray(), CancellationToken.None);
        });
        await using var stream = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        await stream.Reply.WaitAsync(Bound, Ct); // the reply may arrive before we read a single byte
        using var ms = new MemoryStream();
        await stream.GetReadStream(StreamChannel.Stderr).CopyToAsync(ms, Ct);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (byte)i), ms.ToArray());
    }

    [Fact]
    public async Task Eofs_sent_with_the_reply_end_each_channel_after_its_data_and_finish_the_stream()
    {
        var afterReply = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pair = new PairedConnections(async s =>
        {
            await s.WriteAsync(StreamChannel.Stdout, "out"u8.ToArray(), CancellationToken.None);
            await s.WriteAsync(StreamChannel.Stderr, "err"u8.ToArray(), CancellationToken.None);
            await s.SendReplyAsync("{\"ok\":true}"u8.ToArray(), new[] { StreamChannel.Stdout, StreamChannel.Stderr }, CancellationToken.None);
            afterReply.SetResult(await Record.ExceptionAsync(() => s.WriteAsync(StreamChannel.Stdout, "late"u8.ToArray(), CancellationToken.None).AsTask()));
        });
        await using var stream = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);
        using StreamReader stdout = new(stream.GetReadStream(StreamChannel.Stdout)), stderr = new(stream.GetReadStream(StreamChannel.Stderr));
        Assert.Equal("out", await stdout.ReadToEndAsync(Ct).WaitAsync(Bound, Ct));
        Assert.Equal("err", await stderr.ReadToEndAsync(Ct).WaitAsync(Bound, Ct));
        Assert.Equal("{\"ok\":true}", Encoding.UTF8.GetString((await stream.Reply.WaitAsync(Bound, Ct)).Span));
        Assert.IsType<InvalidOperationException>(await afterReply.Task.WaitAsync(Bound, Ct));
    }

    [Fact]
    public async Task A_corrupt_frame_length_closes_the_connection_with_a_protocol_error()
    {
        await using var pair = new PairedConnections(EchoHandler);
        var header = new byte[FrameHeader.Size];
        new FrameHeader(0, 1, FrameType.Data, 0).Write(header);
        header[3] = 0x7f; // length > MaxPayload
        await pair.GuestToHostRaw.WriteAsync(header, Ct);
        await pair.GuestToHostRaw.FlushAsync(Ct);

        var ex = await Assert.ThrowsAsync<MuxProtocolException>(() => pair.Host.Completion.WaitAsync(Bound, Ct));
        Assert.Contains("payload length", ex.Message, StringComparison.Ordinal);
        Assert.True(pair.Host.IsClosed);
    }

    [Fact]
    public async Task A_peer_that_ignores_credit_is_a_protocol_error()
    {
        await using var pair = new PairedConnections(EchoHandler, new MuxOptions { InitialWindow = 1024 });
        await using var stream = await pair.Host.OpenAsync("x"u8.ToArray(), Ct);

        // Forge a guest data frame bigger than the window the host granted.
        var frame = new byte[FrameHeader.Size + 2048];
        new FrameHeader(2048, stream.Id, FrameType.Data, StreamChannel.Stdout).Write(frame);
        await pair.GuestToHostRaw.WriteAsync(frame, Ct);
        await pair.GuestToHostRaw.FlushAsync(Ct);

        await Assert.ThrowsAsync<MuxProtocolException>(() => pair.Host.Completion.WaitAsync(Bound, Ct));
    }

    [Fact]
    public async Task A_stream_opened_from_the_wrong_id_space_is_refused()
    {
        await using var pair = new PairedConnections(EchoHandler);
        var frame = new byte[FrameHeader.Size];
        new FrameHeader(0, 3, FrameType.Open, 0).Write(frame); // odd ids belong to the host
        await pair.GuestToHostRaw.WriteAsync(frame, Ct);
        await pair.GuestToHostRaw.FlushAsync(Ct);

        var ex = await Assert.ThrowsAsync<MuxProtocolException>(() => pair.Host.Completion.WaitAsync(Bound, Ct));
        Assert.Contains("id space", ex.Message, StringComparison.Ordinal);
    }
}
