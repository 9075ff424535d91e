using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Interop;

/// <summary>
/// A blocking Stream over a pipe or PTY master fd. Reads block the calling thread, so the agent
/// pumps each one on a dedicated thread (not the thread pool, which would starve with a few
/// dozen blocked reads on a 2-vCPU guest). A PTY master reports the slave's last close as EIO;
/// with <c>eioIsEndOfStream</c> that becomes a normal end of stream.
/// </summary>
internal sealed unsafe class FdStream : Stream
{
    private readonly SafeFileHandle _handle;
    private readonly bool _canRead;
    private readonly bool _canWrite;
    private readonly bool _eioIsEndOfStream;

    internal FdStream(SafeFileHandle handle, FileAccess access, bool eioIsEndOfStream = false)
    {
        _handle = handle;
        _canRead = access.HasFlag(FileAccess.Read);
        _canWrite = access.HasFlag(FileAccess.Write);
        _eioIsEndOfStream = eioIsEndOfStream;
    }

    public override bool CanRead => _canRead && !_handle.IsClosed;

    public override bool CanWrite => _canWrite && !_handle.IsClosed;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!_canRead)
        {
            throw new NotSupportedException("This stream is write-only.");
        }

        if (buffer.IsEmpty)
        {
            return 0;
        }

        // AddRef keeps the fd number from being closed and reused by another open while we block.
        var added = false;
        _handle.DangerousAddRef(ref added);
        try
        {
            var fd = (int)_handle.DangerousGetHandle();
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    var n = Libc.read(fd, p, (nuint)buffer.Length);
                    if (n >= 0)
                    {
                        return (int)n;
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }

                    if (errno == Errno.EIO && _eioIsEndOfStream)
                    {
                        return 0;
                    }

                    throw new NativeCallException("read", errno);
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (0: just checks) until a read would not block —
    /// data, end of file or an error. False on timeout.
    /// </summary>
    internal bool WaitReadable(int timeoutMs)
    {
        var added = false;
        _handle.DangerousAddRef(ref added);
        try
        {
            var pollFd = new PollFd { Fd = (int)_handle.DangerousGetHandle(), Events = PollFd.PollIn };
            while (true)
            {
                var ready = Libc.poll(&pollFd, 1, timeoutMs);
                if (ready >= 0)
                {
                    return ready > 0;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                {
                    throw new NativeCallException("poll", errno);
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (!_canWrite)
        {
            throw new NotSupportedException("This stream is read-only.");
        }

        var added = false;
        _handle.DangerousAddRef(ref added);
        try
        {
            var fd = (int)_handle.DangerousGetHandle();
            fixed (byte* p = buffer)
            {
                var done = 0;
                while (done < buffer.Length)
                {
                    var n = Libc.write(fd, p + done, (nuint)(buffer.Length - done));
                    if (n >= 0)
                    {
                        done += (int)n;
                        continue;
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != Errno.EINTR)
                    {
                        // EPIPE: the reader (the command) is gone; the caller decides what that means.
                        throw new NativeCallException("write", errno);
                    }
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _handle.Dispose();
        }

        base.Dispose(disposing);
    }
}
