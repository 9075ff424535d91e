using System.Buffers;
using Matchlock.Guest.Interop;
using Matchlock.Protocol;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Copies one output fd of a command (stdout, stderr or the PTY master) to one channel of the
/// exec stream, on a dedicated thread: the read blocks, and the write waits for the host's
/// credit, so a slow host stops our reads and the command blocks on a full pipe (flow control
/// end to end) without tying up the thread pool.
/// </summary>
/// <remarks>
/// After the command exits, its output may stay open in a background process. The exec handler
/// then <see cref="Detach"/>es the pump once it has been idle in read for a while; the pump stops
/// forwarding but keeps reading and discarding, so that background process never blocks on a
/// full pipe. Nothing is sent on the channel after <see cref="Forwarding"/> completes, so the
/// handler can send the channel's EOF then.
/// </remarks>
internal sealed class OutputPump
{
    private readonly Stream _source;
    private readonly MuxStream _stream;
    private readonly byte _channel;
    private readonly CancellationTokenSource _detach = new();
    private readonly TaskCompletionSource _forwarding = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastActivity = Environment.TickCount64;
    private volatile bool _inRead;

    // Guards _detached and _writing, so a detach either waits for the write in progress or
    // prevents the next one: never a data frame after the handler's EOF.
    private readonly Lock _gate = new();
    private bool _detached;
    private bool _writing;

    internal OutputPump(Stream source, MuxStream stream, byte channel)
    {
        _source = source;
        _stream = stream;
        _channel = channel;
        PumpThreads.Shared.Start(Run);
    }

    /// <summary>Completes when the pump will send nothing more (end of output, detached, or the stream failed).</summary>
    internal Task Forwarding => _forwarding.Task;

    /// <summary>
    /// True when the pump is blocked reading, has seen nothing for <paramref name="idle"/> counted
    /// from no earlier than <paramref name="sinceTicks"/> (the command's exit: output written just
    /// before it must not count as old), and there is nothing to read. The last check matters
    /// when the guest is starved (host under load: its clock jumps while this thread waits to
    /// be scheduled with the command's last output, or its EOF, ready in the pipe).
    /// </summary>
    internal bool IsIdleFor(TimeSpan idle, long sinceTicks)
    {
        var quietSince = Math.Max(Interlocked.Read(ref _lastActivity), sinceTicks);
        return _inRead
            && Environment.TickCount64 - quietSince >= (long)idle.TotalMilliseconds
            && !(_source is FdStream fd && fd.WaitReadable(0));
    }

    /// <summary>Stops forwarding (see remarks); safe to call more than once.</summary>
    internal void Detach()
    {
        lock (_gate)
        {
            _detached = true;
            if (!_writing)
            {
                _forwarding.TrySetResult();
                return;
            }
        }

        try
        {
            // Unblocks a write waiting for credit; Run completes Forwarding when it returns.
            _detach.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    // Output counts as "flowing" when the previous frame left this recently.
    private const long FlowingWindowMs = 5;

    // How long a flowing pump waits for the producer to add to what it already read.
    private const int GatherWaitMs = 1;

    /// <summary>
    /// Adds whatever more the command writes soon to the <paramref name="n"/> bytes just read, so
    /// one frame carries many of its writes. Per frame, the protocol costs far more than per byte
    /// (TCG, one vCPU: busybox `head` writes 4 KiB at a time, and one frame per write streamed at
    /// 7 MiB/s against 124 MiB/s raw). Only a flowing pump waits, and only briefly, so a prompt
    /// or a keystroke echo after a pause still goes out at once.
    /// </summary>
    private int Gather(byte[] buffer, int n, bool flowing)
    {
        if (_source is not FdStream fd)
        {
            return n;
        }

        while (n < buffer.Length && fd.WaitReadable(flowing ? GatherWaitMs : 0))
        {
            var more = fd.Read(buffer.AsSpan(n));
            if (more == 0)
            {
                break; // end of output: the next read in Run sees it again
            }

            n += more;
        }

        return n;
    }

    private void Run()
    {
        // One frame's worth (MuxOptions.MaxDataFrame): bigger reads would only be split again.
        // Pooled: a fresh 64 KiB per pump was most of what an exec allocated, and under TCG a
        // gen0 collection pauses the guest for ~70 ms (bench/exec/README.md). Every write of it
        // has completed (we wait for each) before Run returns it.
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        var lastSent = 0L;
        var forwarding = true;
        try
        {
            while (true)
            {
                _inRead = true;
                int n;
                try
                {
                    n = _source.Read(buffer);
                }
                finally
                {
                    _inRead = false;
                    Interlocked.Exchange(ref _lastActivity, Environment.TickCount64);
                }

                if (n == 0)
                {
                    return;
                }

                n = Gather(buffer, n, flowing: Environment.TickCount64 - lastSent <= FlowingWindowMs);

                if (!forwarding)
                {
                    continue;
                }

                lock (_gate)
                {
                    if (_detached)
                    {
                        forwarding = false;
                        continue;
                    }

                    _writing = true;
                }

                try
                {
                    // SendFrameAsync copies the bytes before it returns, and we wait for it, so
                    // the buffer can be reused for the next read.
                    _stream.WriteAsync(_channel, buffer.AsMemory(0, n), _detach.Token).AsTask().GetAwaiter().GetResult();
                    lastSent = Environment.TickCount64;
                    Interlocked.Exchange(ref _lastActivity, lastSent);
                }
                catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or IOException)
                {
                    // Detached, replied, reset or link gone: keep draining, stop forwarding.
                    forwarding = false;
                }
                finally
                {
                    lock (_gate)
                    {
                        _writing = false;
                        forwarding &= !_detached;
                    }
                }

                if (!forwarding)
                {
                    _forwarding.TrySetResult();
                }
            }
        }
        catch (IOException)
        {
            // The fd failed (not EOF/EIO): treat as the end of this output.
        }
        finally
        {
            _forwarding.TrySetResult();
            _source.Dispose();
            _detach.Dispose();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
