using System.Buffers;
using System.Buffers.Binary;
using Matchlock.Guest.Interop;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;

namespace Matchlock.Guest.Agent;

/// <summary>How a <see cref="FuseRelay"/> ended.</summary>
internal enum FuseRelayEnd
{
    /// <summary>The host sent EOF on stdin: it closed the mount.</summary>
    HostClosed,

    /// <summary>The device ended (the filesystem was unmounted in the guest, or the connection aborted).</summary>
    Unmounted,

    /// <summary>The host's replies broke the framing (a length outside 16..<see cref="FuseRelay.MaxMessage"/>).</summary>
    ProtocolError,

    /// <summary>The device refused a reply or failed to read (not ENOENT, which is normal).</summary>
    DeviceFailed,

    /// <summary>The stream was reset or the link lost: nobody to reply to.</summary>
    LinkLost,

    /// <summary><see cref="FuseRelay.Stop"/> (the agent's power-off).</summary>
    Stopped,
}

/// <summary>How a relay ended, and in words why when that was a failure.</summary>
internal readonly record struct FuseRelayOutcome(FuseRelayEnd End, string? Detail = null);

/// <summary>
/// Relays one FUSE connection between the guest's kernel and the host's FUSE server over a
/// <c>vfs_mount</c> stream (docs/VFS.md): each request read from the device goes out unchanged on
/// stdout; the host's replies arrive back to back on stdin, each delimited by the
/// <c>len</c> of its <c>fuse_out_header</c>, and each is written to the device with one write.
/// Nothing else is parsed: the host's server checks every request, the guest's kernel every reply.
/// </summary>
/// <remarks>
/// Many requests are in flight: the kernel queues them and matches replies by their unique id,
/// so one reader (on a dedicated thread, as <see cref="OutputPump"/>: poll and read block, and
/// the stdout write waits for the host's credit) and one writer (async: a write to the device
/// only copies and wakes the waiting caller) suffice. Whichever side ends first stops the other.
/// The relay does not own the device: the caller unmounts and disposes it after
/// <see cref="RunAsync"/> returns, when no thread uses it any more.
/// </remarks>
internal sealed class FuseRelay : IVfsMountSession
{
    /// <summary>
    /// The largest message either way: the 1 MiB <c>max_write</c>/<c>max_read</c> we mount with,
    /// plus room for the headers (a WRITE request is 40 + 40 bytes of headers before its data).
    /// Also the read buffer, which the kernel requires to hold its largest request.
    /// </summary>
    internal const int MaxMessage = 1024 * 1024 + 4096;

    /// <summary>sizeof(struct fuse_out_header): len, error, unique.</summary>
    internal const int MinReply = 16;

    private readonly IFuseDevice _device;
    private readonly MuxStream _stream;
    private readonly CancellationTokenSource _stop = new();
    private int _stopRequested;

    internal FuseRelay(IFuseDevice device, MuxStream stream)
    {
        _device = device;
        _stream = stream;
    }

    /// <summary>Ends the relay from outside (power-off): both loops stop, <see cref="RunAsync"/> returns <see cref="FuseRelayEnd.Stopped"/>.</summary>
    public void Stop()
    {
        Volatile.Write(ref _stopRequested, 1);
        _device.Interrupt();
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The relay already ended.
        }
    }

    /// <summary>Relays until one side ends; then stops the other and returns why it ended.</summary>
    internal async Task<FuseRelayOutcome> RunAsync()
    {
        var reader = new TaskCompletionSource<FuseRelayOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        PumpThreads.Shared.Start(() => reader.TrySetResult(ReadLoop()));
        var writer = WriteLoopAsync();

        var first = await Task.WhenAny(reader.Task, writer);
        _device.Interrupt();
        await _stop.CancelAsync();
        var fromReader = await reader.Task;
        var fromWriter = await writer;
        _stop.Dispose();
        if (Volatile.Read(ref _stopRequested) != 0)
        {
            return new FuseRelayOutcome(FuseRelayEnd.Stopped);
        }

        return first == reader.Task ? fromReader : fromWriter;
    }

    /// <summary>Device → stdout, one request per read, unchanged.</summary>
    private FuseRelayOutcome ReadLoop()
    {
        // Pooled as OutputPump's; each write copies the bytes before it completes, and we wait for it.
        var buffer = ArrayPool<byte>.Shared.Rent(MaxMessage);
        try
        {
            while (true)
            {
                FuseReadStatus status;
                int length;
                try
                {
                    status = _device.Read(buffer.AsSpan(0, MaxMessage), out length);
                }
                catch (NativeCallException e)
                {
                    return new FuseRelayOutcome(FuseRelayEnd.DeviceFailed, e.Message);
                }

                switch (status)
                {
                    case FuseReadStatus.Ended:
                        return new FuseRelayOutcome(FuseRelayEnd.Unmounted);
                    case FuseReadStatus.Interrupted:
                        return new FuseRelayOutcome(FuseRelayEnd.Stopped);
                }

                try
                {
                    _stream.WriteAsync(StreamChannel.Stdout, buffer.AsMemory(0, length), _stop.Token).AsTask().GetAwaiter().GetResult();
                }
                catch (OperationCanceledException)
                {
                    return new FuseRelayOutcome(FuseRelayEnd.Stopped);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
                {
                    // Reset, link closed, or the stream already replied.
                    return new FuseRelayOutcome(FuseRelayEnd.LinkLost, e.Message);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>stdin → device: splits the host's byte stream into replies by their length field.</summary>
    private async Task<FuseRelayOutcome> WriteLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxMessage);
        var start = 0; // first byte of the reply being assembled
        var filled = 0; // bytes in buffer
        try
        {
            while (true)
            {
                // Every whole reply in the buffer goes to the device, in order.
                while (filled - start >= sizeof(uint))
                {
                    var length = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(start));
                    if (length is < MinReply or > MaxMessage)
                    {
                        return new FuseRelayOutcome(FuseRelayEnd.ProtocolError, $"a reply from the host claims {length} bytes (allowed {MinReply}..{MaxMessage})");
                    }

                    if (filled - start < length)
                    {
                        break;
                    }

                    var errno = _device.Write(buffer.AsSpan(start, (int)length));
                    // ENOENT: the request is no longer waiting (interrupted and answered, or its
                    // caller gone); the kernel drops the reply, so do we.
                    if (errno is not 0 and not Errno.ENOENT)
                    {
                        return new FuseRelayOutcome(FuseRelayEnd.DeviceFailed, $"write /dev/fuse: {NativeCallException.Describe(errno)}");
                    }

                    start += (int)length;
                }

                // Keep the partial reply at the front; it is shorter than MaxMessage, so there is room to read more.
                buffer.AsSpan(start, filled - start).CopyTo(buffer);
                filled -= start;
                start = 0;

                int n;
                try
                {
                    n = await _stream.ReadAsync(StreamChannel.Stdin, buffer.AsMemory(filled, MaxMessage - filled), _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return new FuseRelayOutcome(FuseRelayEnd.Stopped);
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    return new FuseRelayOutcome(FuseRelayEnd.LinkLost, e.Message);
                }

                if (n == 0)
                {
                    if (!_stream.ReceivedEof(StreamChannel.Stdin))
                    {
                        return new FuseRelayOutcome(FuseRelayEnd.LinkLost, "the stream ended without EOF");
                    }

                    return filled == 0
                        ? new FuseRelayOutcome(FuseRelayEnd.HostClosed)
                        : new FuseRelayOutcome(FuseRelayEnd.ProtocolError, $"the host closed the mount inside a reply ({filled} bytes of it sent)");
                }

                filled += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
