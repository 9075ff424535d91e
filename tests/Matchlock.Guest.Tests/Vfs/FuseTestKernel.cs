using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Matchlock.Guest.Agent;
using Matchlock.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Tests.Vfs;

/// <summary>
/// A <see cref="FuseRelay"/> between a stand-in for the guest's kernel and a host end: the
/// "kernel" is one end of a <c>socketpair(AF_UNIX, SOCK_SEQPACKET)</c>, whose other end the relay
/// uses as its device (seqpacket keeps message boundaries, as /dev/fuse does); the host is a
/// <see cref="MuxConnection"/> whose stream the guest side serves with the relay.
/// </summary>
internal sealed partial class FuseTestKernel : IAsyncDisposable
{
    private const int AfUnix = 1;
    private const int SockSeqPacket = 5;
    private const int SockCloexec = 0x80000;
    private const int SockNonblock = 0x800;

    private readonly Pipe _hostToGuest = new();
    private readonly Pipe _guestToHost = new();
    private readonly MuxConnection _guest;
    private readonly TaskCompletionSource<FuseRelayOutcome> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SafeFileHandle _kernel;
    private FuseRelay? _relay;

    /// <param name="wrap">Wraps the relay's device (to inject write errors); null: the socket as it is.</param>
    internal unsafe FuseTestKernel(Func<IFuseDevice, IFuseDevice>? wrap = null)
    {
        var fds = stackalloc int[2];
        if (socketpair(AfUnix, SockSeqPacket | SockCloexec, 0, fds) != 0)
        {
            throw new IOException($"socketpair: errno {Marshal.GetLastPInvokeError()}");
        }

        _kernel = new SafeFileHandle(fds[0], ownsHandle: true);
        SetNonBlocking(fds[1]);
        var device = new FuseDevice(new SafeFileHandle(fds[1], ownsHandle: true));
        Device = wrap is null ? device : wrap(device);
        Host = new MuxConnection(_guestToHost.Reader.AsStream(), _hostToGuest.Writer.AsStream(), isHost: true);
        _guest = new MuxConnection(_hostToGuest.Reader.AsStream(), _guestToHost.Writer.AsStream(), isHost: false, ServeAsync);
        Host.Start();
        _guest.Start();
    }

    internal MuxConnection Host { get; }

    internal IFuseDevice Device { get; }

    /// <summary>How the relay ended; it has stopped using the device by then.</summary>
    internal Task<FuseRelayOutcome> Outcome => _outcome.Task;

    internal FuseRelay Relay => Volatile.Read(ref _relay) ?? throw new InvalidOperationException("no relay yet");

    /// <summary>Whether the relay has been made (the stream's handler runs on another thread).</summary>
    internal bool HasRelay => Volatile.Read(ref _relay) is not null;

    internal static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Opens the stream the relay serves (its request payload is not looked at).</summary>
    internal async Task<MuxStream> OpenAsync() => await Host.OpenAsync("{}"u8.ToArray(), Token);

    /// <summary>The kernel sends one request (one message).</summary>
    internal unsafe void Send(ReadOnlySpan<byte> message)
    {
        fixed (byte* p = message)
        {
            if (send((int)_kernel.DangerousGetHandle(), p, (nuint)message.Length, 0) != message.Length)
            {
                throw new IOException($"send: errno {Marshal.GetLastPInvokeError()}");
            }
        }
    }

    /// <summary>The kernel receives one reply: exactly what one write of the relay carried.</summary>
    internal unsafe byte[] Receive()
    {
        var buffer = new byte[FuseRelay.MaxMessage];
        var pollFd = new Interop.PollFd { Fd = (int)_kernel.DangerousGetHandle(), Events = Interop.PollFd.PollIn };
        if (Interop.Libc.poll(&pollFd, 1, (int)ProcessTestSupport.TestTimeout.TotalMilliseconds) != 1)
        {
            throw new TimeoutException("no reply reached the kernel's end");
        }

        fixed (byte* p = buffer)
        {
            var n = recv((int)_kernel.DangerousGetHandle(), p, (nuint)buffer.Length, 0);
            return n < 0 ? throw new IOException($"recv: errno {Marshal.GetLastPInvokeError()}") : buffer[..(int)n];
        }
    }

    /// <summary>True when a reply is waiting at the kernel's end (0 ms: no wait).</summary>
    internal unsafe bool HasReply(int timeoutMs = 0)
    {
        var pollFd = new Interop.PollFd { Fd = (int)_kernel.DangerousGetHandle(), Events = Interop.PollFd.PollIn };
        return Interop.Libc.poll(&pollFd, 1, timeoutMs) == 1;
    }

    /// <summary>The kernel's end goes away (as an unmount ends /dev/fuse).</summary>
    internal void CloseKernel() => _kernel.Dispose();

    /// <summary>A FUSE reply: fuse_out_header (len, error, unique) and a body.</summary>
    internal static byte[] Reply(ulong unique, int bodyLength, int error = 0)
    {
        var reply = new byte[16 + bodyLength];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)reply.Length);
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(4), error);
        BinaryPrimitives.WriteUInt64LittleEndian(reply.AsSpan(8), unique);
        for (var i = 16; i < reply.Length; i++)
        {
            reply[i] = (byte)(unique + (ulong)i);
        }

        return reply;
    }

    /// <summary>A request-shaped message (fuse_in_header is 40 bytes; only its length field is real here).</summary>
    internal static byte[] Request(ulong unique, int length)
    {
        var request = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)length);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(8), unique);
        for (var i = 40; i < length; i++)
        {
            request[i] = (byte)(i * 7);
        }

        return request;
    }

    public async ValueTask DisposeAsync()
    {
        _relay?.Stop();
        await Host.DisposeAsync();
        await _guest.DisposeAsync();
        if (_outcome.Task.IsCompleted)
        {
            Device.Dispose();
        }

        _kernel.Dispose();
    }

    private async Task ServeAsync(MuxStream stream)
    {
        _relay = new FuseRelay(Device, stream);
        var outcome = await _relay.RunAsync();
        _outcome.TrySetResult(outcome);
        try
        {
            await stream.SendReplyAsync(Protocol.Messages.ProtocolSerializer.Serialize(new Protocol.Messages.GuestReply()), CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // The test's host end is gone.
        }
    }

    private static void SetNonBlocking(int fd)
    {
        const int FGetFl = 3;
        const int FSetFl = 4;
        _ = fcntl(fd, FSetFl, fcntl(fd, FGetFl, 0) | SockNonblock);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}
