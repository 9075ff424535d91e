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

                var frame = FrameHeader.Read(header);
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
            // Frames for a stream that already ended (late credit, data after a reset): harmless.
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
            }
        });
    }
}
