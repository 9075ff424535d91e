using System.Threading.Channels;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Agent;

/// <summary>
/// The virtio-serial port, opened once for the life of the guest (the driver allows one open at
/// a time, and a read blocked in another thread would keep a closed fd alive), with one dedicated
/// reader thread. Each host connection gets a <see cref="Session"/> stream over it, which the
/// <c>MuxConnection</c> may dispose without closing the port.
/// </summary>
/// <remarks>
/// Why a dedicated thread: reads on a character device are blocking; an async FileStream read
/// would park a thread-pool thread forever, and on a 2-vCPU guest that starves the pool.
/// While the host side is not connected, read returns 0 at once (docs/PLATFORM.md
/// "virtio-serial channel"); we turn that into one end-of-stream marker per disconnection and
/// poll slowly until data flows again.
/// </remarks>
internal sealed class PortLink : IDisposable
{
    private static readonly TimeSpan DisconnectedPoll = TimeSpan.FromMilliseconds(200);
    private readonly FdStream _port;
    private readonly Channel<ReadOnlyMemory<byte>> _incoming =
        Channel.CreateBounded<ReadOnlyMemory<byte>>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });

    private PortLink(SafeFileHandle handle)
    {
        _port = new FdStream(handle, FileAccess.ReadWrite);
        var reader = new Thread(ReadLoop) { IsBackground = true, Name = "matchlock port reader" };
        reader.Start();
    }

    internal static PortLink Open(string devicePath) =>
        new(FileDescriptors.Open(devicePath, LibcConstants.O_RDWR | LibcConstants.O_NOCTTY));

    /// <summary>A stream for one host connection; it ends when the host disconnects.</summary>
    internal Stream OpenSession() => new Session(this);

    public void Dispose() => _port.Dispose();

    private void ReadLoop()
    {
        var buffer = new byte[64 * 1024];
        var disconnected = false;
        while (true)
        {
            int n;
            try
            {
                n = _port.Read(buffer);
            }
            catch (IOException e)
            {
                GuestLog.Error($"channel read: {e.Message}");
                n = 0;
            }
            catch (ObjectDisposedException)
            {
                _incoming.Writer.TryComplete();
                return;
            }

            if (n > 0)
            {
                disconnected = false;
                // Blocks this thread (only) when the session is not reading: backpressure.
                _incoming.Writer.WriteAsync(buffer.AsMemory(0, n).ToArray()).AsTask().GetAwaiter().GetResult();
                continue;
            }

            if (!disconnected)
            {
                disconnected = true;
                _incoming.Writer.WriteAsync(ReadOnlyMemory<byte>.Empty).AsTask().GetAwaiter().GetResult();
            }

            Thread.Sleep(DisconnectedPoll);
        }
    }

    /// <summary>One connection's view: reads end at the next disconnection marker; writes go to the port.</summary>
    private sealed class Session(PortLink link) : Stream
    {
        private ReadOnlyMemory<byte> _current;
        private bool _ended;

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_current.IsEmpty)
            {
                if (_ended)
                {
                    return 0;
                }

                if (!await link._incoming.Reader.WaitToReadAsync(cancellationToken) || !link._incoming.Reader.TryRead(out _current))
                {
                    _ended = true;
                    return 0;
                }

                if (_current.IsEmpty)
                {
                    // The host went away: this session is over; the next one starts clean.
                    _ended = true;
                    return 0;
                }
            }

            var n = Math.Min(buffer.Length, _current.Length);
            _current[..n].CopyTo(buffer);
            _current = _current[n..];
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) =>
            ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        // The mux writes whole frames under its own lock; a blocking write to the port is short
        // (the host reads continuously) and fails with an IOException if the host is gone.
        public override void Write(byte[] buffer, int offset, int count) => link._port.Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => link._port.Write(buffer);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            link._port.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            link._port.Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            // The port outlives sessions; only this view ends.
            _ended = true;
            base.Dispose(disposing);
        }
    }
}
