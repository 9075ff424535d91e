using System.Buffers.Binary;
using System.Net.Sockets;
using Matchlock.Core.Interop;
using Matchlock.Core.Vfs.Fuse;
using Matchlock.Core.Vfs.VhostUser;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Core.Tests.Vfs.VhostUser;

/// <summary>
/// QEMU's side of vhost-user, in-process, for tests: speaks the real protocol to a
/// <see cref="VhostUserFsBackend"/> over its UNIX socket, shares a memfd as "guest memory"
/// (read and written here with pread/pwrite, which the back-end's MAP_SHARED mapping sees), lays
/// out split virtqueues in it, kicks them and reads the used rings.
/// </summary>
internal sealed class FakeFrontend : IAsyncDisposable
{
    public const ulong GuestBase = 0x4000_0000; // guest-physical start of the memory
    public const ulong UserBase = 0x7f12_0000_0000; // where "QEMU" has it mapped
    public const int MemorySize = 8 * 1024 * 1024;
    public const ushort QueueSize = 16;
    public const int Queues = 2;

    private const int DataStart = 0x10_0000;

    private readonly string _dir;
    private readonly SafeFileHandle _memory;
    private readonly int _memFd;
    private readonly int[] _kick = new int[Queues];
    private readonly int[] _call = new int[Queues];
    private readonly ushort[] _avail = new ushort[Queues];
    private readonly ushort[] _usedSeen = new ushort[Queues];
    private ulong _bump = DataStart;

    private FakeFrontend(string dir, VhostUserFsBackend backend, Socket socket, int memFd)
    {
        _dir = dir;
        Backend = backend;
        Socket = socket;
        _memFd = memFd;
        _memory = new SafeFileHandle(memFd, ownsHandle: false);
        for (var q = 0; q < Queues; q++)
        {
            _kick[q] = VhostNative.EventFd();
            _call[q] = VhostNative.EventFd();
        }
    }

    public VhostUserFsBackend Backend { get; }

    public Socket Socket { get; }

    public static async Task<FakeFrontend> ConnectAsync(FuseServer server)
    {
        var dir = Directory.CreateTempSubdirectory("ml-vhost-").FullName;
        var path = Path.Combine(dir, "fs.sock");
        var backend = VhostUserFsBackend.Listen(path, server, NullLogger.Instance);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 5000 };
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var memFd = VhostNative.MemFd("fake-guest-ram", MemorySize);
        Assert.True(memFd >= 0);
        return new FakeFrontend(dir, backend, socket, memFd);
    }

    public static ulong RingDesc(int q) => GuestBase + (ulong)(q * 0x1_0000);

    public static ulong RingAvail(int q) => RingDesc(q) + 0x1000;

    public static ulong RingUsed(int q) => RingDesc(q) + 0x2000;

    /// <summary>The whole handshake QEMU does, every step acknowledged (REPLY_ACK).</summary>
    public void SetUp(bool indirect = true)
    {
        Assert.Equal(VhostUserConstants.OfferedFeatures, ReadU64(Call(VhostUserRequest.GetFeatures, [])));
        var features = (1UL << 32) | (1UL << 30) | (indirect ? 1UL << 28 : 0);
        Send(VhostUserRequest.SetFeatures, U64(features)); // REPLY_ACK is not negotiated yet
        var protocol = ReadU64(Call(VhostUserRequest.GetProtocolFeatures, []));
        Send(VhostUserRequest.SetProtocolFeatures, U64(protocol & 0b1001));
        Assert.Equal((ulong)Queues, ReadU64(Call(VhostUserRequest.GetQueueNum, [])));
        Acked(VhostUserRequest.SetOwner, []);
        Acked(VhostUserRequest.SetMemTable, MemTable(GuestBase, MemorySize, UserBase, 0), _memFd);
        for (var q = 0; q < Queues; q++)
        {
            Acked(VhostUserRequest.SetVringNum, State(q, QueueSize));
            Acked(VhostUserRequest.SetVringBase, State(q, 0));
            Acked(VhostUserRequest.SetVringAddr, Addr(q, ToUser(RingDesc(q)), ToUser(RingUsed(q)), ToUser(RingAvail(q))));
            Acked(VhostUserRequest.SetVringCall, U64((ulong)q), _call[q]);
            Acked(VhostUserRequest.SetVringKick, U64((ulong)q), _kick[q]);
            Acked(VhostUserRequest.SetVringEnable, State(q, 1));
        }
    }

    public static ulong ToUser(ulong guest) => guest - GuestBase + UserBase;

    public static byte[] U64(ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return b;
    }

    public static ulong ReadU64(byte[] b) => BinaryPrimitives.ReadUInt64LittleEndian(b);

    public static byte[] State(int index, uint num)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)index);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), num);
        return b;
    }

    public static byte[] Addr(int index, ulong desc, ulong used, ulong avail)
    {
        var b = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)index);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), desc);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), used);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), avail);
        return b;
    }

    public static byte[] MemTable(ulong guest, ulong size, ulong user, ulong offset)
    {
        var b = new byte[8 + 32];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), guest);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), size);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), user);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(32), offset);
        return b;
    }

    /// <summary>Sends one message (with <paramref name="fds"/> as SCM_RIGHTS).</summary>
    public void Send(VhostUserRequest request, byte[] payload, bool needReply = false, params int[] fds) =>
        SendRaw((uint)request, 1 | (needReply ? VhostUserConstants.NeedReplyFlag : 0), payload, fds);

    public void SendRaw(uint request, uint flags, byte[] payload, params int[] fds)
    {
        var m = new byte[12 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, request);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(m, 12);
        Assert.Equal(m.Length, VhostNative.SendWithFds((int)Socket.Handle, m, fds));
    }

    /// <summary>A message that has a reply of its own; returns the reply's payload.</summary>
    public byte[] Call(VhostUserRequest request, byte[] payload)
    {
        Send(request, payload);
        return ReadReply(request);
    }

    /// <summary>A message with NEED_REPLY: the back-end acknowledges it with u64 0.</summary>
    public void Acked(VhostUserRequest request, byte[] payload, params int[] fds)
    {
        Send(request, payload, needReply: true, fds);
        Assert.Equal(0UL, ReadU64(ReadReply(request)));
    }

    public byte[] ReadReply(VhostUserRequest request)
    {
        var header = ReceiveExactly(12);
        Assert.Equal((uint)request, BinaryPrimitives.ReadUInt32LittleEndian(header));
        Assert.Equal(0x5u, BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)));
        return ReceiveExactly((int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8)));
    }

    private byte[] ReceiveExactly(int n)
    {
        var b = new byte[n];
        var read = 0;
        while (read < n)
        {
            var got = Socket.Receive(b.AsSpan(read));
            Assert.True(got > 0, "the back-end closed the connection");
            read += got;
        }

        return b;
    }

    public void Write(ulong guest, ReadOnlySpan<byte> data) => RandomAccess.Write(_memory, data, (long)(guest - GuestBase));

    public byte[] Read(ulong guest, int length)
    {
        var b = new byte[length];
        Assert.Equal(length, RandomAccess.Read(_memory, b, (long)(guest - GuestBase)));
        return b;
    }

    public ulong Alloc(int size)
    {
        var at = _bump;
        _bump += (ulong)((size + 63) & ~63);
        if (_bump > (ulong)MemorySize - 4096)
        {
            _bump = DataStart;
            at = _bump;
            _bump += (ulong)((size + 63) & ~63);
        }

        return GuestBase + at;
    }

    public void Descriptor(ulong table, int index, ulong address, uint length, ushort flags, ushort next)
    {
        var d = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(d, address);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), length);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(12), flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(14), next);
        Write(table + (ulong)(16 * index), d);
    }

    /// <summary>Puts <paramref name="head"/> in the available ring, publishes it and kicks.</summary>
    public void Publish(int q, ushort head)
    {
        var entry = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(entry, head);
        Write(RingAvail(q) + 4 + (ulong)(2 * (_avail[q] % QueueSize)), entry);
        PublishIndex(q, (ushort)(_avail[q] + 1));
    }

    /// <summary>Sets the available index (any value: hostile tests) and kicks.</summary>
    public void PublishIndex(int q, ushort index)
    {
        _avail[q] = index;
        var idx = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(idx, index);
        Write(RingAvail(q) + 2, idx);
        VhostNative.Signal(_kick[q]);
    }

    /// <summary>The next used element of queue <paramref name="q"/>, or null when none came within <paramref name="timeout"/>.</summary>
    public (uint Id, uint Length)? WaitUsed(int q, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var idx = BinaryPrimitives.ReadUInt16LittleEndian(Read(RingUsed(q) + 2, 2));
            if (idx != _usedSeen[q])
            {
                var e = Read(RingUsed(q) + 4 + (ulong)(8 * (_usedSeen[q] % QueueSize)), 8);
                _usedSeen[q]++;
                return (BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt32LittleEndian(e.AsSpan(4)));
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return null;
            }

            Span<VhostNative.PollFd> fds = [new VhostNative.PollFd { Fd = _call[q], Events = VhostNative.PollIn }];
            if (VhostNative.Poll(fds, (int)Math.Min(left.TotalMilliseconds, 100) + 1) > 0)
            {
                _ = VhostNative.Drain(_call[q]);
            }
        }
    }

    /// <summary>
    /// One request as a chain from descriptor 0: each readable part in its own descriptor, then
    /// one writable descriptor per size. Waits for it; returns the used length and the bytes
    /// written (the writable buffers concatenated, cut at the used length).
    /// </summary>
    public (uint Length, byte[] Reply) Request(int q, byte[][] readable, int[] writable, bool viaIndirect = false)
    {
        var count = readable.Length + writable.Length;
        var table = viaIndirect ? Alloc(16 * count) : RingDesc(q);
        var buffers = new List<(ulong Address, int Size)>();
        for (var i = 0; i < count; i++)
        {
            var isWritable = i >= readable.Length;
            var size = isWritable ? writable[i - readable.Length] : readable[i].Length;
            var address = Alloc(Math.Max(size, 1));
            if (!isWritable)
            {
                Write(address, readable[i]);
            }
            else
            {
                Write(address, new byte[size]);
                buffers.Add((address, size));
            }

            var flags = (ushort)((i < count - 1 ? SplitVirtqueue.DescNext : 0) | (isWritable ? SplitVirtqueue.DescWrite : 0));
            Descriptor(table, i, address, (uint)size, flags, (ushort)(i + 1));
        }

        if (viaIndirect)
        {
            Descriptor(RingDesc(q), 0, table, (uint)(16 * count), SplitVirtqueue.DescIndirect, 0);
        }

        Publish(q, 0);
        var used = WaitUsed(q, TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("no used element");
        Assert.Equal(0u, used.Id);
        var reply = buffers.SelectMany(b => Read(b.Address, b.Size)).Take((int)used.Length).ToArray();
        return (used.Length, reply);
    }

    public async ValueTask DisposeAsync()
    {
        Socket.Dispose();
        await Backend.DisposeAsync();
        for (var q = 0; q < Queues; q++)
        {
            _ = VhostNative.Close(_kick[q]);
            _ = VhostNative.Close(_call[q]);
        }

        _ = VhostNative.Close(_memFd);
        Directory.Delete(_dir, recursive: true);
    }
}
