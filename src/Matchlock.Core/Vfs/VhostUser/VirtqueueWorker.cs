using System.Runtime.InteropServices;
using Matchlock.Core.Interop;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// Serves one started virtqueue: a dedicated thread polls the queue's kick eventfd (and a stop
/// eventfd), drains the available ring and hands chains to <c>serve</c>. When several chains are
/// waiting, all but the last go to the thread pool (many in flight, as the kernel sends them) and
/// the last is served on this thread (no hand-off for the one-at-a-time metadata case); kicks are
/// suppressed while draining. Completions go to the used ring and, when the guest wants it, to the
/// call eventfd. docs/VFS.md "vhost-user transport".
/// </summary>
internal sealed class VirtqueueWorker
{
    /// <summary>How long a stop waits for requests still being answered on the pool.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    private readonly int _index;
    private readonly SplitVirtqueue _ring;
    private readonly GuestMemory _memory;
    private readonly int _kickFd;
    private readonly VringNotifier _call;
    private readonly Func<DescriptorChain, uint> _serve;
    private readonly ILogger _log;
    private readonly int _stopFd;
    private readonly CountdownEvent _inFlight = new(1);
    private readonly Thread _thread;
    private readonly bool _serveLastInline;

    /// <param name="kickFd">Not owned: the session closes it after <see cref="Stop"/>.</param>
    /// <param name="serve">Answers one chain; returns the bytes written into its writable part. Must not throw.</param>
    /// <param name="serveLastInline">
    /// Serve the last chain of a drain on this thread (no hand-off). False when a request may take
    /// long (per-operation hooks with timeouts): then every chain goes to the pool, so one slow
    /// request does not hold up the ones behind it.
    /// </param>
    public VirtqueueWorker(int index, SplitVirtqueue ring, GuestMemory memory, int kickFd, VringNotifier call, Func<DescriptorChain, uint> serve, ILogger log, bool serveLastInline = true)
    {
        _serveLastInline = serveLastInline;
        _index = index;
        _ring = ring;
        _memory = memory;
        _kickFd = kickFd;
        _call = call;
        _serve = serve;
        _log = log;
        _stopFd = VhostNative.EventFd();
        if (_stopFd < 0)
        {
            throw new VhostUserException($"eventfd failed: errno {Marshal.GetLastPInvokeError()}");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = $"vhost-user vq{index}" };
    }

    public void Start()
    {
        if (!_memory.TryAcquire())
        {
            throw new VhostUserException("guest memory is gone");
        }

        _thread.Start();
    }

    /// <summary>Stops the thread, waits (bounded) for the requests in flight, detaches the ring; returns the next available index.</summary>
    public ushort Stop()
    {
        VhostNative.Signal(_stopFd);
        _thread.Join();
        _inFlight.Signal();
        if (!_inFlight.Wait(DrainTimeout))
        {
            VhostUserLog.StopTimedOut(_log, _index, _inFlight.CurrentCount);
        }

        _ring.Detach();
        _ = VhostNative.Close(_stopFd);
        return _ring.LastAvail;
    }

    private void Run()
    {
        Span<VhostNative.PollFd> fds = stackalloc VhostNative.PollFd[2];
        try
        {
            while (true)
            {
                if (!Drain())
                {
                    return; // the ring is broken; the queue stays stopped until QEMU resets it
                }

                fds[0] = new VhostNative.PollFd { Fd = _kickFd, Events = VhostNative.PollIn };
                fds[1] = new VhostNative.PollFd { Fd = _stopFd, Events = VhostNative.PollIn };
                if (VhostNative.Poll(fds, -1) < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == VhostNative.EINTR)
                    {
                        continue;
                    }

                    VhostUserLog.QueueEnded(_log, _index, $"poll failed: errno {errno}");
                    return;
                }

                if (fds[1].Revents != 0)
                {
                    return;
                }

                if ((fds[0].Revents & (VhostNative.PollErr | VhostNative.PollHup | VhostNative.PollNval)) != 0)
                {
                    VhostUserLog.QueueEnded(_log, _index, $"the kick eventfd reported 0x{fds[0].Revents:x}");
                    return;
                }

                _ = VhostNative.Drain(_kickFd);
            }
        }
        finally
        {
            _memory.Release();
        }
    }

    /// <summary>Takes everything available; false when the ring is broken.</summary>
    private bool Drain()
    {
        while (true)
        {
            _ring.SuppressKicks(true);
            DescriptorChain? last = null;
            while (true)
            {
                switch (_ring.TryPop(out var chain, out var error))
                {
                    case PopResult.Empty:
                        break;
                    case PopResult.Broken:
                        VhostUserLog.QueueEnded(_log, _index, error!);
                        return false;
                    case PopResult.Malformed:
                        VhostUserLog.MalformedChain(_log, _index, chain!.Head, error!);
                        Finish(chain.Head, 0);
                        continue;
                    default:
                        if (last is not null)
                        {
                            Dispatch(last);
                        }

                        last = chain;
                        continue;
                }

                break;
            }

            if (last is not null)
            {
                if (_serveLastInline)
                {
                    Serve(last);
                }
                else
                {
                    Dispatch(last);
                }

                continue;
            }

            _ring.SuppressKicks(false);
            if (!_ring.HasAvailable)
            {
                return true;
            }
        }
    }

    private void Dispatch(DescriptorChain chain)
    {
        if (!_memory.TryAcquire())
        {
            return; // cannot happen while this thread holds its own lease
        }

        _inFlight.AddCount();
        ThreadPool.UnsafeQueueUserWorkItem(
            static state =>
            {
                var (worker, chain) = state;
                try
                {
                    worker.Serve(chain);
                }
                finally
                {
                    worker._memory.Release();
                    worker._inFlight.Signal();
                }
            },
            (this, chain),
            preferLocal: false);
    }

    private void Serve(DescriptorChain chain)
    {
        uint written;
        try
        {
            written = _serve(chain);
        }
#pragma warning disable CA1031 // a bug answering one request must not take the owner down: the request completes empty
        catch (Exception ex)
#pragma warning restore CA1031
        {
            VhostUserLog.ServeFailed(_log, _index, ex);
            written = 0;
        }

        Finish(chain.Head, written);
    }

    private void Finish(ushort head, uint written)
    {
        if (_ring.Complete(head, written))
        {
            _call.Signal();
        }
    }
}
