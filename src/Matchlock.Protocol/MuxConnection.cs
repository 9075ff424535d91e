using System.Buffers;
using System.Collections.Concurrent;
using Matchlock.Protocol.Framing;

namespace Matchlock.Protocol;

/// <summary>
/// One framed, multiplexed link between host and guest (docs/ARCHITECTURE.md D6). Many <see cref="MuxStream"/>s
/// run over it at once, each with per-channel flow control and explicit end-of-stream.
/// </summary>
/// <remarks>
/// A single reader loop dispatches incoming frames; writers share the transport under one lock so
/// frames never interleave. Inbound data is bounded by the credit we grant, so the reader never
/// blocks on a slow consumer and one stalled stream cannot stall the others.
/// </remarks>
public sealed partial class MuxConnection : IAsyncDisposable
{
    private readonly Stream _input;
    private readonly Stream _output;
    private readonly bool _isHost;
    private readonly ConcurrentDictionary<uint, MuxStream> _streams = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1); // guards _output: one frame at a time
    private readonly TaskCompletionSource<ReadOnlyMemory<byte>> _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Func<MuxStream, Task>? _onIncoming;
    private Task? _readLoop;
    private int _nextId; // the last id we handed out (ours: odd on the host, even on the guest)
    private uint _highestPeerId; // the highest id the peer opened; only the read loop touches it
    private volatile Exception? _closedReason;

    /// <param name="input">Where frames arrive from. Must not buffer writes of the peer indefinitely.</param>
    /// <param name="output">Where frames go. Written with whole frames; flushed after each.</param>
    /// <param name="isHost">Host opens odd stream ids, guest even, so the two never collide.</param>
    /// <param name="onIncoming">Handler for streams the peer opens; each runs on its own task.</param>
    public MuxConnection(Stream input, Stream output, bool isHost, Func<MuxStream, Task>? onIncoming = null, MuxOptions? options = null)
    {
        _input = input;
        _output = output;
        _isHost = isHost;
        _onIncoming = onIncoming;
        Options = options ?? MuxOptions.Default;
        _nextId = isHost ? -1 : 0;
    }

    public MuxConnection(Stream duplex, bool isHost, Func<MuxStream, Task>? onIncoming = null, MuxOptions? options = null)
        : this(duplex, duplex, isHost, onIncoming, options)
    {
    }

    public MuxOptions Options { get; }

    /// <summary>Completes when the read loop ends: faulted with the reason the link went away.</summary>
    public Task Completion => _readLoop ?? Task.CompletedTask;

    /// <summary>True once the link failed or was disposed.</summary>
    public bool IsClosed => _closedReason is not null;

    /// <summary>Starts the read loop. Call once.</summary>
    public void Start()
    {
        if (_readLoop is not null)
        {
            throw new InvalidOperationException("the connection is already started");
        }

        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>Guest side: announces that the guest is ready. Sent once, on stream 0.</summary>
    public ValueTask SendHelloAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
        SendFrameAsync(0, FrameType.Hello, 0, payload.Span, cancellationToken);

    /// <summary>Host side: waits for the guest's hello and returns its payload.</summary>
    public async Task<ReadOnlyMemory<byte>> WaitForHelloAsync(CancellationToken cancellationToken) =>
        await _hello.Task.WaitAsync(cancellationToken);

    /// <summary>Opens a stream with the given request payload.</summary>
    public async ValueTask<MuxStream> OpenAsync(ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        CheckPayload(request.Length);
        var buffer = ArrayPool<byte>.Shared.Rent(FrameHeader.Size + request.Length);
        request.Span.CopyTo(buffer.AsSpan(FrameHeader.Size));
        MuxStream? stream = null;

        // The id is taken under the write lock, so ids reach the peer in increasing order, which
        // it checks (a lower id is a protocol error that closes the link). Taken before the lock,
        // two opens racing between taking and writing once swapped their frames, and the guest
        // closed the whole link under 32 concurrent port-forward connections.
        await WriteUnderLockAsync(buffer, FrameHeader.Size + request.Length, ReadOnlyMemory<byte>.Empty, cancellationToken, () =>
        {
            var id = (uint)Interlocked.Add(ref _nextId, 2);
            stream = new MuxStream(this, id, request);
            _streams[id] = stream;
            new FrameHeader(request.Length, id, FrameType.Open, 0).Write(buffer);
        });
        return stream!;
    }

    internal void Forget(uint id) => _streams.TryRemove(id, out _);

    internal void ThrowIfClosed()
    {
        if (_closedReason is { } reason)
        {
            throw new MuxConnectionClosedException("the link to the peer is closed: " + reason.Message, reason);
        }
    }

    internal ValueTask SendFrameAsync(uint streamId, FrameType type, byte channel, ReadOnlySpan<byte> payload, CancellationToken cancellationToken)
    {
        CheckPayload(payload.Length);
        var length = FrameHeader.Size + payload.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        new FrameHeader(payload.Length, streamId, type, channel).Write(buffer);
        payload.CopyTo(buffer.AsSpan(FrameHeader.Size));
        return WriteUnderLockAsync(buffer, length, ReadOnlyMemory<byte>.Empty, cancellationToken);
    }

    /// <summary>
    /// Sends a frame whose payload stays where it is: header and payload go out as two writes
    /// under the lock instead of being copied together. Under TCG every pass over the bytes costs
    /// as much as the channel itself (measured), so bulk data is not copied once more here.
    /// The caller must keep <paramref name="payload"/> unchanged until the returned task completes.
    /// </summary>
    internal ValueTask SendFrameAsync(uint streamId, FrameType type, byte channel, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (payload.Length < LargePayload)
        {
            return SendFrameAsync(streamId, type, channel, payload.Span, cancellationToken);
        }

        CheckPayload(payload.Length);
        var header = ArrayPool<byte>.Shared.Rent(FrameHeader.Size);
        new FrameHeader(payload.Length, streamId, type, channel).Write(header);
        return WriteUnderLockAsync(header, FrameHeader.Size, payload, cancellationToken);
    }

    // Below this a copy is cheaper than a second write.
    private const int LargePayload = 4096;

    /// <summary>
    /// An EOF frame for each of <paramref name="channels"/>, then the reply, as one write: the
    /// peer sees the same frames as from separate sends. At the end of an exec that is three
    /// frames back to back, and on the guest each write is a syscall plus a virtio notification
    /// that TCG emulates (bench/exec/README.md).
    /// </summary>
    internal ValueTask SendEofsAndReplyAsync(uint streamId, ReadOnlySpan<byte> channels, ReadOnlySpan<byte> reply, CancellationToken cancellationToken)
    {
        CheckPayload(reply.Length);
        var length = ((channels.Length + 1) * FrameHeader.Size) + reply.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var offset = 0;
        foreach (var channel in channels)
        {
            new FrameHeader(0, streamId, FrameType.Eof, channel).Write(buffer.AsSpan(offset));
            offset += FrameHeader.Size;
        }

        new FrameHeader(reply.Length, streamId, FrameType.Reply, 0).Write(buffer.AsSpan(offset));
        reply.CopyTo(buffer.AsSpan(offset + FrameHeader.Size));
        return WriteUnderLockAsync(buffer, length, ReadOnlyMemory<byte>.Empty, cancellationToken);
    }

    private void CheckPayload(int length)
    {
        if (length > FrameHeader.MaxPayload)
        {
            throw new ArgumentException($"payload of {length} bytes exceeds the frame limit of {FrameHeader.MaxPayload}", "payload");
        }

        ThrowIfClosed();
    }

    /// <summary>Writes <paramref name="buffer"/> (pooled; returned here) then <paramref name="tail"/>, as one frame.</summary>
    /// <param name="beforeWrite">Runs under the lock, right before the write (an open takes its id there).</param>
    private async ValueTask WriteUnderLockAsync(byte[] buffer, int length, ReadOnlyMemory<byte> tail, CancellationToken cancellationToken, Action? beforeWrite = null)
    {
        try
        {
            await _writeLock.WaitAsync(cancellationToken);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        try
        {
            ThrowIfClosed();
            beforeWrite?.Invoke();

            // Not cancellable once started: a half-written frame would desynchronise the link.
            await _output.WriteAsync(buffer.AsMemory(0, length), CancellationToken.None);
            if (!tail.IsEmpty)
            {
                await _output.WriteAsync(tail, CancellationToken.None);
            }

            await _output.FlushAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            Fail(new MuxConnectionClosedException("writing to the peer failed: " + ex.Message, ex));
            throw new MuxConnectionClosedException("writing to the peer failed: " + ex.Message, ex);
        }
        finally
        {
            _writeLock.Release();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Fail(Exception reason)
    {
        if (Interlocked.CompareExchange(ref _closedReason, reason, null) is not null)
        {
            return;
        }

        _hello.TrySetException(reason);
        foreach (var stream in _streams.Values)
        {
            stream.OnConnectionLost(reason);
        }

        _streams.Clear();
        _shutdown.Cancel();
    }

    public async ValueTask DisposeAsync()
    {
        Fail(new MuxConnectionClosedException("the connection was disposed"));
        await _input.DisposeAsync();
        if (!ReferenceEquals(_input, _output))
        {
            await _output.DisposeAsync();
        }

        if (_readLoop is not null)
        {
            try
            {
                await _readLoop;
            }
            catch (MuxProtocolException)
            {
                // Already reported through Completion to whoever was watching it.
            }
        }

        _shutdown.Dispose();
    }
}
