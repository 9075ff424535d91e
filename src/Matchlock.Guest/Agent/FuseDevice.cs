using System.Runtime.InteropServices;
using Matchlock.Guest.Interop;
using Microsoft.Win32.SafeHandles;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Agent;

/// <summary>What a read from the FUSE device gave.</summary>
internal enum FuseReadStatus
{
    /// <summary>One whole request (the device never splits or joins them).</summary>
    Message,

    /// <summary>The connection is gone: unmounted (ENODEV), aborted (ECONNABORTED), or the peer closed (tests).</summary>
    Ended,

    /// <summary><see cref="IFuseDevice.Interrupt"/> was called.</summary>
    Interrupted,
}

/// <summary>The kernel's end of one FUSE connection as the relay sees it; a seam for tests.</summary>
internal interface IFuseDevice : IDisposable
{
    /// <summary>Blocks until one request can be read into <paramref name="buffer"/>, the connection ends, or <see cref="Interrupt"/>.</summary>
    /// <exception cref="NativeCallException">Any other failure of poll or read.</exception>
    FuseReadStatus Read(Span<byte> buffer, out int length);

    /// <summary>Writes one reply with one write(2); returns 0 or the errno.</summary>
    int Write(ReadOnlySpan<byte> message);

    /// <summary>Makes a blocked <see cref="Read"/>, and every later one, return <see cref="FuseReadStatus.Interrupted"/>. Safe from any thread, more than once.</summary>
    void Interrupt();
}

/// <summary>
/// A FUSE device file descriptor: <c>/dev/fuse</c> in the guest, or any descriptor that keeps
/// message boundaries (a SOCK_SEQPACKET socket in tests). Opened non-blocking and waited on with
/// poll(2) together with a wake-up pipe, so <see cref="Interrupt"/> can stop a reader: a thread
/// blocked in read(2) keeps the file referenced, so closing the fd could not stop it (and the
/// close, which is what aborts the connection, would never happen).
/// </summary>
internal sealed unsafe class FuseDevice : IFuseDevice
{
    internal const string DevicePath = "/dev/fuse";

    // include/uapi/linux/major.h MISC_MAJOR, include/linux/miscdevice.h FUSE_MINOR.
    private const uint FuseMajor = 10;
    private const uint FuseMinor = 229;

    private readonly SafeFileHandle _device;
    private readonly SafeFileHandle _wakeRead;
    private readonly SafeFileHandle _wakeWrite;
    private int _interrupted;

    /// <param name="device">A non-blocking descriptor; owned (closed at dispose).</param>
    internal FuseDevice(SafeFileHandle device)
    {
        _device = device;
        (_wakeRead, _wakeWrite) = FileDescriptors.CreatePipe();
    }

    /// <summary>The fd number, for the mount's <c>fd=</c> option.</summary>
    internal int Fd => (int)_device.DangerousGetHandle();

    /// <summary>
    /// Opens <c>/dev/fuse</c> (O_RDWR|O_CLOEXEC|O_NONBLOCK), first creating the node (c 10:229,
    /// 0666) when devtmpfs has none: no udev in the guest, and a devtmpfs mounted before the
    /// module registered the device still gets the node, but a plain /dev would not.
    /// </summary>
    internal static FuseDevice Open(string path = DevicePath)
    {
        var fd = Libc.open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK, 0);
        if (fd < 0 && Marshal.GetLastPInvokeError() == Errno.ENOENT)
        {
            if (Libc.mknod(path, S_IFCHR | 0x1B6 /* 0666 */, MakeDev(FuseMajor, FuseMinor)) != 0 && Marshal.GetLastPInvokeError() != Errno.EEXIST)
            {
                throw NativeCallException.FromLastError($"mknod {path} c {FuseMajor} {FuseMinor}");
            }

            fd = Libc.open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK, 0);
        }

        if (fd < 0)
        {
            throw NativeCallException.FromLastError($"open {path}");
        }

        return new FuseDevice(new SafeFileHandle(fd, ownsHandle: true));
    }

    public FuseReadStatus Read(Span<byte> buffer, out int length)
    {
        length = 0;
        var added = false;
        _device.DangerousAddRef(ref added); // the fd number stays ours while we block
        try
        {
            var fd = Fd;
            var fds = stackalloc PollFd[2];
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    if (Volatile.Read(ref _interrupted) != 0)
                    {
                        return FuseReadStatus.Interrupted;
                    }

                    fds[0] = new PollFd { Fd = fd, Events = PollFd.PollIn };
                    fds[1] = new PollFd { Fd = (int)_wakeRead.DangerousGetHandle(), Events = PollFd.PollIn };
                    if (Libc.poll(fds, 2, -1) < 0)
                    {
                        var pollErrno = Marshal.GetLastPInvokeError();
                        if (pollErrno == Errno.EINTR)
                        {
                            continue;
                        }

                        throw new NativeCallException("poll /dev/fuse", pollErrno);
                    }

                    if (fds[1].Revents != 0)
                    {
                        return FuseReadStatus.Interrupted;
                    }

                    var n = Libc.read(fd, p, (nuint)buffer.Length);
                    if (n > 0)
                    {
                        length = (int)n;
                        return FuseReadStatus.Message;
                    }

                    if (n == 0)
                    {
                        return FuseReadStatus.Ended; // a socket whose peer closed; /dev/fuse never reads 0
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    switch (errno)
                    {
                        // EAGAIN: poll saw a request that an interrupt took away before our read.
                        case Errno.EINTR or Errno.EAGAIN:
                            continue;
                        // fuse_dev_do_read: the connection is gone (unmounted, or aborted).
                        case Errno.ENODEV or Errno.ECONNABORTED:
                            return FuseReadStatus.Ended;
                        default:
                            throw new NativeCallException("read /dev/fuse", errno);
                    }
                }
            }
        }
        finally
        {
            if (added)
            {
                _device.DangerousRelease();
            }
        }
    }

    public int Write(ReadOnlySpan<byte> message)
    {
        var added = false;
        _device.DangerousAddRef(ref added);
        try
        {
            fixed (byte* p = message)
            {
                while (true)
                {
                    // One write per reply: the device takes a reply whole or not at all (its
                    // fuse_out_header.len must equal the write's size).
                    var n = Libc.write(Fd, p, (nuint)message.Length);
                    if (n == message.Length)
                    {
                        return 0;
                    }

                    if (n >= 0)
                    {
                        return Errno.EIO; // a short write: cannot happen on the device or a seqpacket socket
                    }

                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != Errno.EINTR)
                    {
                        return errno;
                    }
                }
            }
        }
        finally
        {
            if (added)
            {
                _device.DangerousRelease();
            }
        }
    }

    public void Interrupt()
    {
        if (Interlocked.Exchange(ref _interrupted, 1) != 0 || _wakeWrite.IsClosed)
        {
            return;
        }

        var added = false;
        try
        {
            _wakeWrite.DangerousAddRef(ref added); // never a write to an fd number closed and reused meanwhile
            FileDescriptors.WriteAll((int)_wakeWrite.DangerousGetHandle(), [1]);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: there is no reader left to wake.
        }
        finally
        {
            if (added)
            {
                _wakeWrite.DangerousRelease();
            }
        }
    }

    /// <summary>Closes the device: if the filesystem is still mounted, this aborts the connection (every waiting request fails with ENOTCONN).</summary>
    public void Dispose()
    {
        _device.Dispose();
        _wakeRead.Dispose();
        _wakeWrite.Dispose();
    }
}
