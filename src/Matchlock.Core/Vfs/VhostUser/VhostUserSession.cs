using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Matchlock.Core.Interop;
using Microsoft.Extensions.Logging;
using static Matchlock.Core.Vfs.VhostUser.VhostUserConstants;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// One vhost-user connection (QEMU's docs/interop/vhost-user.rst), from the back-end's side: reads
/// each message with its descriptors, keeps the memory table and each queue's state, and starts a
/// <see cref="VirtqueueWorker"/> for a queue once it has memory, addresses, a kick eventfd and is
/// enabled. Every message is checked (size, queue index, features we offered); anything we do not
/// implement, or a message that breaks the protocol, ends the connection with a logged reason.
/// All state changes happen on the thread running <see cref="Run"/>. docs/VFS.md "vhost-user transport".
/// </summary>
internal sealed class VhostUserSession
{
    private readonly Socket _socket;
    private readonly int _fd;
    private readonly QueueState[] _queues;
    private readonly Func<DescriptorChain, uint> _serve;
    private readonly ILogger _log;
    private readonly bool _serveLastInline;
    private GuestMemory _memory = GuestMemory.Empty;
    private ulong _features;
    private ulong _protocolFeatures;

    /// <param name="queueCount">Queues we serve (virtio-fs: hiprio plus the request queues).</param>
    /// <param name="serveLastInline">See <see cref="VirtqueueWorker"/>.</param>
    public VhostUserSession(Socket socket, int queueCount, Func<DescriptorChain, uint> serve, ILogger log, bool serveLastInline = true)
    {
        _serveLastInline = serveLastInline;
        _socket = socket;
        _fd = (int)socket.Handle;
        _queues = [.. Enumerable.Range(0, queueCount).Select(_ => new QueueState())];
        _serve = serve;
        _log = log;
    }

    /// <summary>Serves until the peer disconnects or breaks the protocol; then stops every queue and unmaps guest memory. Returns why it ended.</summary>
    public string Run()
    {
        var fds = new List<int>(MaxFds);
        var header = new byte[HeaderSize];
        try
        {
            while (true)
            {
                fds.Clear();
                var status = ReadMessage(header, fds, out var payload);
                if (status is not null)
                {
                    return status;
                }

                var request = (VhostUserRequest)BinaryPrimitives.ReadUInt32LittleEndian(header);
                var flags = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
                try
                {
                    var replied = Handle(request, payload!, fds);
                    if (!replied && (flags & NeedReplyFlag) != 0 && (_protocolFeatures & (1UL << ProtocolReplyAck)) != 0)
                    {
                        Reply(request, U64(0));
                    }
                }
                finally
                {
                    foreach (var fd in fds)
                    {
                        _ = VhostNative.Close(fd); // what the handler did not take
                    }
                }
            }
        }
        catch (VhostUserException ex)
        {
            return ex.Message;
        }
        catch (SocketException ex)
        {
            return $"the socket failed: {ex.Message}";
        }
        finally
        {
            StopAll();
            foreach (var q in _queues)
            {
                q.Close();
            }

            if (_memory != GuestMemory.Empty)
            {
                _memory.Dispose();
            }
        }
    }

    /// <summary>What <see cref="Run"/> returns when the front-end closed the connection between messages.</summary>
    public const string Disconnected = "the front-end disconnected";

    private const int MaxFds = VhostNative.MaxFds;

    /// <summary>Null when a whole message was read; else why the connection ends.</summary>
    private string? ReadMessage(byte[] header, List<int> fds, out byte[]? payload)
    {
        payload = null;
        var read = 0;
        while (read < HeaderSize)
        {
            var n = VhostNative.ReceiveWithFds(_fd, header.AsSpan(read), fds, out var truncated);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == VhostNative.EINTR)
                {
                    continue;
                }

                if (errno == VhostNative.EAGAIN)
                {
                    WaitReadable(); // the socket came non-blocking: wait for the next message (or the shutdown)
                    continue;
                }

                return $"recvmsg failed: errno {errno}";
            }

            if (truncated)
            {
                throw new VhostUserException($"a message came with more than {MaxFds} descriptors");
            }

            if (n == 0)
            {
                return read == 0 ? Disconnected : "the front-end disconnected inside a message header";
            }

            read += n;
        }

        var flags = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        var size = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        if ((flags & VersionMask) != ProtocolVersion || (flags & ReplyFlag) != 0)
        {
            throw new VhostUserException($"a message with flags 0x{flags:x} (version {flags & VersionMask})");
        }

        if (size > MaxPayload)
        {
            throw new VhostUserException($"a message payload of {size} bytes");
        }

        payload = new byte[size];
        read = 0;
        while (read < size)
        {
            var n = VhostNative.ReceiveWithFds(_fd, payload.AsSpan(read), fds, out var truncated);
            if (n < 0 && Marshal.GetLastPInvokeError() is VhostNative.EINTR or VhostNative.EAGAIN)
            {
                WaitReadable();
                continue;
            }

            if (n <= 0 || truncated)
            {
                return "the front-end disconnected inside a message";
            }

            read += n;
        }

        return null;
    }

    private void WaitReadable()
    {
        Span<VhostNative.PollFd> fds = [new VhostNative.PollFd { Fd = _fd, Events = VhostNative.PollIn }];
        _ = VhostNative.Poll(fds, -1);
    }

    /// <summary>Acts on one message; true when it sent its own reply.</summary>
    private bool Handle(VhostUserRequest request, byte[] p, List<int> fds)
    {
        VhostUserLog.Message(_log, request, p.Length, fds.Count);
        switch (request)
        {
            case VhostUserRequest.GetFeatures:
                Expect(request, p, 0, fds);
                Reply(request, U64(OfferedFeatures));
                return true;
            case VhostUserRequest.SetFeatures:
                Expect(request, p, 8, fds);
                _features = Offered(BinaryPrimitives.ReadUInt64LittleEndian(p), OfferedFeatures, "features");
                return false;
            case VhostUserRequest.GetProtocolFeatures:
                Expect(request, p, 0, fds);
                Reply(request, U64(OfferedProtocolFeatures));
                return true;
            case VhostUserRequest.SetProtocolFeatures:
                Expect(request, p, 8, fds);
                _protocolFeatures = Offered(BinaryPrimitives.ReadUInt64LittleEndian(p), OfferedProtocolFeatures, "protocol features");
                return false;
            case VhostUserRequest.SetOwner:
                Expect(request, p, 0, fds);
                return false;
            case VhostUserRequest.ResetOwner:
                Expect(request, p, 0, fds);
                StopAll();
                foreach (var q in _queues)
                {
                    q.Close();
                    q.Reset();
                }

                _features = 0;
                return false;
            case VhostUserRequest.SetMemTable:
                SetMemTable(p, fds);
                return false;
            case VhostUserRequest.GetQueueNum:
                Expect(request, p, 0, fds);
                Reply(request, U64((ulong)_queues.Length));
                return true;
            case VhostUserRequest.SetVringNum:
            {
                Expect(request, p, 8, fds);
                var q = Queue(p, out _);
                q.Num = BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(4));
                return false;
            }

            case VhostUserRequest.SetVringAddr:
            {
                Expect(request, p, 40, fds);
                var q = Queue(p, out _);
                q.Desc = BinaryPrimitives.ReadUInt64LittleEndian(p.AsSpan(8));
                q.Used = BinaryPrimitives.ReadUInt64LittleEndian(p.AsSpan(16));
                q.Avail = BinaryPrimitives.ReadUInt64LittleEndian(p.AsSpan(24));
                q.HasAddresses = true;
                return false;
            }

            case VhostUserRequest.SetVringBase:
            {
                Expect(request, p, 8, fds);
                var q = Queue(p, out _);
                var num = BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(4));
                q.Base = num <= ushort.MaxValue ? (ushort)num : throw new VhostUserException($"ring base {num} is over 65535");
                return false;
            }

            case VhostUserRequest.GetVringBase:
            {
                Expect(request, p, 8, fds);
                var q = Queue(p, out var index);
                Stop(q);
                q.CloseKick();
                var reply = new byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(reply, index);
                BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(4), q.Base);
                Reply(request, reply);
                return true;
            }

            case VhostUserRequest.SetVringKick:
            {
                var (q, index, fd) = VringFd(request, p, fds);
                if (fd < 0)
                {
                    throw new VhostUserException($"queue {index} has no kick eventfd (polling is not supported)");
                }

                Stop(q);
                q.CloseKick();
                q.Kick = fd;
                TryStart(q, index);
                return false;
            }

            case VhostUserRequest.SetVringCall:
            {
                var (q, _, fd) = VringFd(request, p, fds);
                q.Call.Replace(fd);
                return false;
            }

            case VhostUserRequest.SetVringErr:
            {
                var (q, _, fd) = VringFd(request, p, fds);
                q.ReplaceErr(fd);
                return false;
            }

            case VhostUserRequest.SetVringEnable:
            {
                Expect(request, p, 8, fds);
                var q = Queue(p, out var index);
                q.Enabled = BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(4)) != 0;
                if (q.Enabled)
                {
                    TryStart(q, index);
                }
                else
                {
                    Stop(q);
                }

                return false;
            }

            default:
                throw new VhostUserException($"unsupported message {(uint)request} ({p.Length} bytes)");
        }
    }

    private void SetMemTable(byte[] p, List<int> fds)
    {
        if (p.Length < 8)
        {
            throw new VhostUserException($"SET_MEM_TABLE of {p.Length} bytes");
        }

        var count = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (count is 0 or > MaxRegions || p.Length != 8 + (32 * (int)count) || fds.Count != count)
        {
            throw new VhostUserException($"SET_MEM_TABLE of {count} regions in {p.Length} bytes with {fds.Count} descriptors");
        }

        var specs = new MemoryRegionSpec[count];
        for (var i = 0; i < count; i++)
        {
            var r = p.AsSpan(8 + (32 * i));
            specs[i] = new MemoryRegionSpec(
                BinaryPrimitives.ReadUInt64LittleEndian(r),
                BinaryPrimitives.ReadUInt64LittleEndian(r[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(r[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(r[24..]));
        }

        // Running queues hold pointers into the old table: stop them, remap, start them again.
        var running = _queues.Select((q, i) => (q, i)).Where(x => x.q.Worker is not null).ToList();
        foreach (var (q, _) in running)
        {
            Stop(q);
        }

        var memory = GuestMemory.Map(specs, fds); // the fds are closed by Run's finally: the mappings keep the memory
        if (_memory != GuestMemory.Empty)
        {
            _memory.Dispose();
        }

        _memory = memory;
        VhostUserLog.MemoryMapped(_log, (int)count, specs.Aggregate(0UL, (sum, s) => sum + s.Size));
        foreach (var (q, i) in running)
        {
            TryStart(q, (uint)i);
        }
    }

    private void TryStart(QueueState q, uint index)
    {
        var enabled = q.Enabled || (_features & (1UL << FeatureProtocolFeatures)) == 0; // without protocol features a ring starts enabled
        if (q.Worker is not null || q.Kick < 0 || !enabled || !q.HasAddresses || _memory.RegionCount == 0)
        {
            return;
        }

        var ring = SplitVirtqueue.Create(_memory, q.Num, q.Desc, q.Avail, q.Used, q.Base, (_features & (1UL << FeatureIndirectDesc)) != 0, out var error);
        if (ring is null)
        {
            VhostUserLog.QueueEnded(_log, (int)index, error!);
            return;
        }

        var worker = new VirtqueueWorker((int)index, ring, _memory, q.Kick, q.Call, _serve, _log, _serveLastInline);
        worker.Start();
        q.Worker = worker;
        VhostUserLog.QueueStarted(_log, (int)index, q.Num, q.Base);
    }

    private static void Stop(QueueState q)
    {
        if (q.Worker is { } worker)
        {
            q.Base = worker.Stop();
            q.Worker = null;
        }
    }

    private void StopAll()
    {
        foreach (var q in _queues)
        {
            Stop(q);
        }
    }

    private QueueState Queue(byte[] p, out uint index)
    {
        index = BinaryPrimitives.ReadUInt32LittleEndian(p);
        return index < _queues.Length ? _queues[index] : throw new VhostUserException($"queue {index} of {_queues.Length}");
    }

    /// <summary>SET_VRING_KICK/CALL/ERR: the queue and its descriptor (taken from <paramref name="fds"/>), or -1 with the no-fd flag.</summary>
    private (QueueState Queue, uint Index, int Fd) VringFd(VhostUserRequest request, byte[] p, List<int> fds)
    {
        if (p.Length != 8)
        {
            throw new VhostUserException($"{request} of {p.Length} bytes");
        }

        var value = BinaryPrimitives.ReadUInt64LittleEndian(p);
        var index = (uint)(value & VringIndexMask);
        if ((value & ~(VringIndexMask | VringNoFd)) != 0 || index >= _queues.Length)
        {
            throw new VhostUserException($"{request} with 0x{value:x}");
        }

        var noFd = (value & VringNoFd) != 0;
        if (fds.Count != (noFd ? 0 : 1))
        {
            throw new VhostUserException($"{request} for queue {index} came with {fds.Count} descriptors");
        }

        var fd = -1;
        if (!noFd)
        {
            fd = fds[0];
            fds.Clear(); // taken
        }

        return (_queues[index], index, fd);
    }

    private static void Expect(VhostUserRequest request, byte[] p, int size, List<int> fds)
    {
        if (p.Length != size || fds.Count != 0)
        {
            throw new VhostUserException($"{request} of {p.Length} bytes with {fds.Count} descriptors (expected {size} bytes, none)");
        }
    }

    private static ulong Offered(ulong value, ulong offered, string what) =>
        (value & ~offered) == 0 ? value : throw new VhostUserException($"the front-end set {what} 0x{value:x}, beyond the 0x{offered:x} offered");

    private static byte[] U64(ulong value)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return b;
    }

    private void Reply(VhostUserRequest request, byte[] payload)
    {
        var message = new byte[HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), ProtocolVersion | ReplyFlag);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(message, HeaderSize);
        var sent = 0;
        while (sent < message.Length)
        {
            sent += _socket.Send(message.AsSpan(sent), SocketFlags.None);
        }
    }

    /// <summary>What one queue has been told so far.</summary>
    private sealed class QueueState
    {
        public uint Num { get; set; }

        public ulong Desc { get; set; }

        public ulong Avail { get; set; }

        public ulong Used { get; set; }

        public bool HasAddresses { get; set; }

        public ushort Base { get; set; }

        public bool Enabled { get; set; }

        public int Kick { get; set; } = -1;

        public int Err { get; private set; } = -1;

        public VringNotifier Call { get; } = new();

        public VirtqueueWorker? Worker { get; set; }

        public void CloseKick()
        {
            if (Kick >= 0)
            {
                _ = VhostNative.Close(Kick);
                Kick = -1;
            }
        }

        public void ReplaceErr(int fd)
        {
            if (Err >= 0)
            {
                _ = VhostNative.Close(Err);
            }

            Err = fd;
        }

        public void Reset()
        {
            Num = 0;
            HasAddresses = false;
            Base = 0;
            Enabled = false;
        }

        public void Close()
        {
            CloseKick();
            ReplaceErr(-1);
            Call.Replace(-1);
        }
    }
}
