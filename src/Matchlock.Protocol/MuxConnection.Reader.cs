using System.Buffers.Binary;
using System.Text;
using Matchlock.Protocol.Framing;

namespace Matchlock.Protocol;

public sealed partial class MuxConnection
{
    private async Task ReadLoopAsync()
    {
        var header = new byte[FrameHeader.Size];
        try
        {
            while (true)
            {
                try
                {
                    await _input.ReadExactlyAsync(header, _shutdown.Token);
                }
                catch (EndOfStreamException)
                {
                    Fail(new MuxConnectionClosedException("the peer closed the link"));
                    return;
                }

                if (!FrameHeader.TryRead(header, out var frame, out var error))
                {
                    throw new MuxProtocolException(error);
                }

                var payload = frame.PayloadLength == 0 ? [] : new byte[frame.PayloadLength];
                if (payload.Length > 0)
                {
                    await _input.ReadExactlyAsync(payload, _shutdown.Token);
                }

                Dispatch(frame, payload);
            }
        }
        catch (Exception) when (_closedReason is not null)
        {
            // We closed the link (disposed, or a write failed) while a read was in flight; the
            // transport then fails in its own way (cancelled, disposed, reader completed). The
            // reason that matters is already recorded.
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or EndOfStreamException)
        {
            Fail(ex is MuxProtocolException ? ex : new MuxConnectionClosedException("reading from the peer failed: " + ex.Message, ex));
            if (ex is MuxProtocolException)
            {
                throw;
            }
        }
    }

    private void Dispatch(FrameHeader frame, byte[] payload)
    {
        if (frame.Type == FrameType.Hello)
        {
            _hello.TrySetResult(payload);
            return;
        }

        if (frame.Type == FrameType.Open)
        {
            AcceptIncoming(frame.StreamId, payload);
            return;
        }

        if (!_streams.TryGetValue(frame.StreamId, out var stream))
        {
            // Frames for a stream that already ended (late credit, data after a reset) are a race
            // and harmless. Frames for an id nobody opened yet are not: the peer is not following
            // the protocol, and nothing it sends afterwards can be trusted to be in step.
            if (!WasEverOpened(frame.StreamId))
            {
                throw new MuxProtocolException($"the peer sent a {frame.Type} frame for stream {frame.StreamId}, which was never opened");
            }

            return;
        }

        if (frame.Channel >= StreamChannel.Count && frame.Type is FrameType.Data or FrameType.Eof or FrameType.Credit)
        {
            throw new MuxProtocolException($"stream {frame.StreamId}: channel {frame.Channel} does not exist");
        }

        switch (frame.Type)
        {
            case FrameType.Data:
                stream.OnData(frame.Channel, payload);
                break;
            case FrameType.Eof:
                stream.OnEof(frame.Channel);
                break;
            case FrameType.Credit:
                if (payload.Length != 4)
                {
                    throw new MuxProtocolException($"stream {frame.StreamId}: credit frame of {payload.Length} bytes");
                }

                stream.OnCredit(frame.Channel, BinaryPrimitives.ReadUInt32LittleEndian(payload));
                break;
            case FrameType.Control:
                stream.OnControl(payload);
                break;
            case FrameType.Reply:
                Forget(frame.StreamId);
                stream.OnReply(payload);
                break;
            case FrameType.Reset:
                Forget(frame.StreamId);
                stream.OnReset(Encoding.UTF8.GetString(payload));
                break;
        }
    }

    private void AcceptIncoming(uint id, byte[] request)
    {
        var expectOdd = !_isHost;
        if (id == 0 || (id % 2 == 1) != expectOdd)
        {
            throw new MuxProtocolException($"the peer opened stream {id}, which is not in its id space");
        }

        if (id <= _highestPeerId)
        {
            throw new MuxProtocolException($"the peer opened stream {id} twice (or out of order)");
        }

        _highestPeerId = id;
        var stream = new MuxStream(this, id, request);
        if (!_streams.TryAdd(id, stream))
        {
            throw new MuxProtocolException($"the peer opened stream {id} twice");
        }

        if (_onIncoming is null)
        {
            _ = stream.ResetAsync("this side does not accept streams", CancellationToken.None).AsTask();
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await _onIncoming(stream);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A handler that throws must not leave the peer waiting forever on its reply.
                await stream.TryResetAsync("handler failed: " + ex.Message);
                return;
            }

            // Nor one that returns without answering (it gave up on a stream it depended on,
            // or forgot): every incoming stream ends with a reply or a reset, so the opener
            // never waits for nothing (issue 11: the owner once returned silently when the
            // guest reset the exec it relayed, and `matchlock exec` waited forever).
            if (!stream.IsFinishedLocally)
            {
                await stream.TryResetAsync("the handler ended without a reply");
            }
        });
    }

    /// <summary>
    /// True when <paramref name="id"/> belongs to a stream that was opened at some point: ours
    /// are handed out in increasing order, the peer's must arrive in increasing order (see
    /// <see cref="AcceptIncoming"/>), so anything above the highest id so far was never opened.
    /// </summary>
    private bool WasEverOpened(uint id)
    {
        var ours = (id % 2 == 1) == _isHost;
        return id != 0 && (ours ? id <= (long)Volatile.Read(ref _nextId) : id <= _highestPeerId);
    }
}
