using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;
using Matchlock.Protocol.Framing;

namespace Matchlock.Protocol;

/// <summary>
/// One request/response exchange on a <see cref="MuxConnection"/>: an opening request, up to
/// <see cref="StreamChannel.Count"/> byte channels in each direction, control messages, and a
/// final reply (or a reset).
/// </summary>
public sealed class MuxStream : IAsyncDisposable
{
    private readonly MuxConnection _connection;
    private readonly Inbound[] _inbound = new Inbound[StreamChannel.Count];
    private readonly Outbound[] _outbound = new Outbound[StreamChannel.Count];
    // Not SingleReader: a consumer may take messages from two threads, serialized by its own
    // lock but with one of them waiting in WaitToReadAsync meanwhile (the guest's ExecControls).
    private readonly Channel<ReadOnlyMemory<byte>> _controls = Channel.CreateUnbounded<ReadOnlyMemory<byte>>();
    private readonly TaskCompletionSource<ReadOnlyMemory<byte>> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _finishedLocally; // 1 once we sent a reply or reset: nothing more may be sent

    internal MuxStream(MuxConnection connection, uint id, ReadOnlyMemory<byte> request)
    {
        _connection = connection;
        Id = id;
        Request = request;
        for (var i = 0; i < StreamChannel.Count; i++)
        {
            _inbound[i] = new Inbound();
            _outbound[i] = new Outbound(connection.Options.InitialWindow);
        }
    }

    public uint Id { get; }

    /// <summary>The payload of the opening frame.</summary>
    public ReadOnlyMemory<byte> Request { get; }

    /// <summary>Control messages from the peer, in order. Completes when the stream ends.</summary>
    public ChannelReader<ReadOnlyMemory<byte>> Controls => _controls.Reader;

    /// <summary>True once this side sent its reply or reset: nothing more may be sent on the stream.</summary>
    public bool IsFinishedLocally => Volatile.Read(ref _finishedLocally) != 0;

    /// <summary>The peer's final reply; faults with <see cref="MuxStreamResetException"/> on reset.</summary>
    public Task<ReadOnlyMemory<byte>> Reply => _reply.Task;

    /// <summary>Reads from one inbound channel. Returns 0 at the channel's end of stream.</summary>
    public async ValueTask<int> ReadAsync(byte channel, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var inbound = _inbound[channel];
        while (inbound.Current.IsEmpty)
        {
            if (!await inbound.Queue.Reader.WaitToReadAsync(cancellationToken))
            {
                return 0;
            }

            inbound.Queue.Reader.TryRead(out inbound.Current);
        }

        var n = Math.Min(buffer.Length, inbound.Current.Length);
        inbound.Current[..n].CopyTo(buffer);
        inbound.Current = inbound.Current[n..];
        inbound.Unacknowledged += n;

        // Grant credit in batches (a quarter window) so a steady stream costs few credit frames.
        if (inbound.Unacknowledged >= _connection.Options.InitialWindow / 4 && Volatile.Read(ref _finishedLocally) == 0)
        {
            var grant = inbound.Unacknowledged;
            inbound.Unacknowledged = 0;
            await SendCreditAsync(channel, grant, cancellationToken);
        }

        return n;
    }

    /// <summary>Writes bytes to one outbound channel, waiting for credit from the peer as needed.</summary>
    public async ValueTask WriteAsync(byte channel, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var outbound = _outbound[channel];
        while (!data.IsEmpty)
        {
            var allowed = await outbound.AcquireAsync(Math.Min(data.Length, _connection.Options.MaxDataFrame), cancellationToken);
            ThrowIfFinished();
            await _connection.SendFrameAsync(Id, FrameType.Data, channel, data[..allowed], cancellationToken);
            data = data[allowed..];
        }
    }

    /// <summary>Ends one outbound channel. The peer's reads return 0 once it has read what came before.</summary>
    public ValueTask WriteEofAsync(byte channel, CancellationToken cancellationToken)
    {
        ThrowIfFinished();
        return _connection.SendFrameAsync(Id, FrameType.Eof, channel, [], cancellationToken);
    }

    public ValueTask SendControlAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        ThrowIfFinished();
        return _connection.SendFrameAsync(Id, FrameType.Control, 0, message.Span, cancellationToken);
    }

    /// <summary>Sends the final reply. Nothing can be sent on this stream afterwards.</summary>
    public async ValueTask SendReplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _finishedLocally, 1) != 0)
        {
            throw new InvalidOperationException($"stream {Id} already finished");
        }

        await _connection.SendFrameAsync(Id, FrameType.Reply, 0, reply.Span, cancellationToken);
        FinishLocally(null);
    }

    /// <summary>
    /// Ends each of <paramref name="channels"/> (as <see cref="WriteEofAsync"/>) and sends the final
    /// reply, in one write to the link. Nothing can be sent on this stream afterwards.
    /// </summary>
    public async ValueTask SendReplyAsync(ReadOnlyMemory<byte> reply, ReadOnlyMemory<byte> channels, CancellationToken cancellationToken)
    {
        foreach (var channel in channels.Span)
        {
            if (channel >= StreamChannel.Count)
            {
                throw new ArgumentOutOfRangeException(nameof(channels), $"channel {channel} does not exist");
            }
        }

        if (Interlocked.Exchange(ref _finishedLocally, 1) != 0)
        {
            throw new InvalidOperationException($"stream {Id} already finished");
        }

        await _connection.SendEofsAndReplyAsync(Id, channels.Span, reply.Span, cancellationToken);
        FinishLocally(null);
    }

    /// <summary>Aborts the stream; the peer sees <see cref="MuxStreamResetException"/>.</summary>
    public async ValueTask ResetAsync(string reason, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _finishedLocally, 1) != 0)
        {
            return;
        }

        try
        {
            await _connection.SendFrameAsync(Id, FrameType.Reset, 0, Encoding.UTF8.GetBytes(reason), cancellationToken);
        }
        finally
        {
            FinishLocally(new MuxStreamResetException("stream reset locally: " + reason));
        }
    }

    /// <summary><see cref="ResetAsync"/> that ignores a link already gone.</summary>
    public async Task TryResetAsync(string reason)
    {
        try
        {
            await ResetAsync(reason, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or MuxConnectionClosedException or ObjectDisposedException)
        {
            // The link is gone; the peer learns about it from that.
        }
    }

    /// <summary>A <see cref="Stream"/> view reading one inbound channel.</summary>
    public Stream GetReadStream(byte channel) => new MuxChannelStream(this, channel, canRead: true);

    /// <summary>A <see cref="Stream"/> view writing one outbound channel; disposing it sends EOF.</summary>
    public Stream GetWriteStream(byte channel) => new MuxChannelStream(this, channel, canRead: false);

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _finishedLocally) == 0 && !_reply.Task.IsCompleted)
        {
            await TryResetAsync("abandoned by its owner");
        }

        _connection.Forget(Id);
    }

    internal void OnData(byte channel, byte[] payload)
    {
        var inbound = _inbound[channel];
        inbound.Received += payload.Length;
        if (inbound.Received - inbound.Granted() > _connection.Options.InitialWindow)
        {
            throw new MuxProtocolException($"stream {Id} channel {channel}: the peer sent more than the credit it was given");
        }

        inbound.Queue.Writer.TryWrite(payload);
    }

    internal void OnEof(byte channel)
    {
        _inbound[channel].EofReceived = true;
        _inbound[channel].Queue.Writer.TryComplete();
    }

    /// <summary>
    /// True when the peer ended <paramref name="channel"/> with an explicit EOF, rather than the
    /// channel ending because the stream finished (reply, reset). Frames arrive in order, so once
    /// a read has returned 0 this tells a clean end of data from an aborted one.
    /// </summary>
    public bool ReceivedEof(byte channel) => _inbound[channel].EofReceived;

    internal void OnCredit(byte channel, uint bytes) => _outbound[channel].Grant(bytes);

    internal void OnControl(byte[] payload) => _controls.Writer.TryWrite(payload);

    internal void OnReply(byte[] payload)
    {
        // Channels the peer did not close explicitly end with its reply.
        foreach (var inbound in _inbound)
        {
            inbound.Queue.Writer.TryComplete();
        }

        _controls.Writer.TryComplete();
        _reply.TrySetResult(payload);
        foreach (var outbound in _outbound)
        {
            outbound.Abort(new MuxStreamResetException($"stream {Id} already replied"));
        }
    }

    internal void OnReset(string reason) => Terminate(new MuxStreamResetException($"the peer reset stream {Id}: {reason}"));

    internal void OnConnectionLost(Exception reason) =>
        Terminate(reason as MuxConnectionClosedException ?? new MuxConnectionClosedException("the link to the peer is closed: " + reason.Message, reason));

    /// <summary>Ends the stream abnormally: every pending and future read, write and reply sees <paramref name="error"/>.</summary>
    private void Terminate(Exception error)
    {
        foreach (var inbound in _inbound)
        {
            inbound.Queue.Writer.TryComplete(error);
        }

        _controls.Writer.TryComplete();
        _reply.TrySetException(error);
        foreach (var outbound in _outbound)
        {
            outbound.Abort(error);
        }
    }

    private ValueTask SendCreditAsync(byte channel, int bytes, CancellationToken cancellationToken)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)bytes);
        _inbound[channel].AddGranted(bytes);
        return _connection.SendFrameAsync(Id, FrameType.Credit, channel, payload, cancellationToken);
    }

    private void FinishLocally(Exception? error)
    {
        _connection.Forget(Id);

        // Forgotten by the connection, the stream gets no more frames: reads still waiting must end.
        foreach (var inbound in _inbound)
        {
            inbound.Queue.Writer.TryComplete(error);
        }

        _controls.Writer.TryComplete();
        if (error is not null)
        {
            // Reset locally: the peer's reply will never be read; whoever waits for it must not hang.
            _reply.TrySetException(error);
        }

        foreach (var outbound in _outbound)
        {
            outbound.Abort(error ?? new InvalidOperationException($"stream {Id} already finished"));
        }
    }

    private void ThrowIfFinished()
    {
        if (Volatile.Read(ref _finishedLocally) != 0)
        {
            throw new InvalidOperationException($"stream {Id} already finished");
        }
    }

    private sealed class Inbound
    {
        private long _granted;

        public Channel<ReadOnlyMemory<byte>> Queue { get; } = Channel.CreateUnbounded<ReadOnlyMemory<byte>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        // Current/Unacknowledged belong to the single reader; Received to the connection's read loop.
        public ReadOnlyMemory<byte> Current;
        public int Unacknowledged;
        public long Received;
        public volatile bool EofReceived;

        public long Granted() => Interlocked.Read(ref _granted);

        public void AddGranted(int bytes) => Interlocked.Add(ref _granted, bytes);
    }

    /// <summary>Send-side credit for one channel.</summary>
    private sealed class Outbound(int initialWindow)
    {
        private readonly Lock _lock = new(); // guards _credit, _waiter, _error
        private long _credit = initialWindow;
        private TaskCompletionSource? _waiter;
        private Exception? _error;

        public async ValueTask<int> AcquireAsync(int wanted, CancellationToken cancellationToken)
        {
            while (true)
            {
                Task wait;
                lock (_lock)
                {
                    if (_error is not null)
                    {
                        throw _error;
                    }

                    if (_credit > 0)
                    {
                        var n = (int)Math.Min(wanted, _credit);
                        _credit -= n;
                        return n;
                    }

                    _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _waiter.Task;
                }

                await wait.WaitAsync(cancellationToken);
            }
        }

        public void Grant(uint bytes)
        {
            TaskCompletionSource? waiter;
            lock (_lock)
            {
                _credit += bytes;
                waiter = _waiter;
                _waiter = null;
            }

            waiter?.TrySetResult();
        }

        public void Abort(Exception error)
        {
            TaskCompletionSource? waiter;
            lock (_lock)
            {
                _error ??= error;
                waiter = _waiter;
                _waiter = null;
            }

            waiter?.TrySetResult();
        }
    }
}
