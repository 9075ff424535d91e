using System.Buffers.Binary;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>What <see cref="SplitVirtqueue.TryPop"/> found.</summary>
internal enum PopResult
{
    /// <summary>Nothing new in the available ring.</summary>
    Empty,

    /// <summary>A valid chain.</summary>
    Chain,

    /// <summary>A chain that breaks the rules: complete it with length 0 (its head is valid).</summary>
    Malformed,

    /// <summary>The ring itself is broken (an index out of range): the queue stops.</summary>
    Broken,
}

/// <summary>
/// A split virtqueue (virtio 1.x, "Split Virtqueues") in guest memory, read as the device: the
/// descriptor table, the available ring (written by the guest) and the used ring (ours). All
/// guest-controlled values are read once into locals and checked before use: the available index
/// may run at most the queue size ahead, heads and next indexes must be in the table, chains are
/// bounded by the table's size (which also ends loops), indirect tables are bounded and not nested,
/// and a device-readable descriptor after a writable one makes the chain malformed. Memory order:
/// the available index is read with acquire semantics before the entries it publishes; a used
/// element is written before the used index is published with release semantics.
/// docs/VFS.md "vhost-user transport".
/// </summary>
internal sealed unsafe class SplitVirtqueue
{
    public const ushort DescNext = 1;
    public const ushort DescWrite = 2;
    public const ushort DescIndirect = 4;
    public const ushort AvailNoInterrupt = 1;
    public const ushort UsedNoNotify = 1;

    /// <summary>The largest readable part we gather (a FUSE request: 1 MiB of WRITE data plus headers).</summary>
    public const int MaxReadable = Fuse.FuseConstants.MaxRequest;

    /// <summary>The most entries an indirect table may have.</summary>
    public const int MaxIndirect = 4096;

    private readonly GuestMemory _memory;
    private readonly byte* _desc;
    private readonly byte* _avail;
    private readonly byte* _used;
    private readonly ushort _size;
    private readonly bool _indirect;
    private readonly Lock _usedLock = new();
    private ushort _lastAvail;
    private ushort _usedIdx; // guarded by _usedLock
    private bool _detached; // guarded by _usedLock

    private SplitVirtqueue(GuestMemory memory, byte* desc, byte* avail, byte* used, ushort size, ushort baseIndex, bool indirect)
    {
        _memory = memory;
        _desc = desc;
        _avail = avail;
        _used = used;
        _size = size;
        _indirect = indirect;
        _lastAvail = baseIndex;
        _usedIdx = baseIndex;
    }

    public ushort Size => _size;

    /// <summary>The next available entry to take (what GET_VRING_BASE reports).</summary>
    public ushort LastAvail => _lastAvail;

    /// <summary>
    /// The rings at QEMU's addresses (SET_VRING_ADDR), checked to lie whole and aligned in one
    /// region each; null with the reason when they do not.
    /// </summary>
    public static SplitVirtqueue? Create(GuestMemory memory, uint size, ulong descAddress, ulong availAddress, ulong usedAddress, ushort baseIndex, bool indirect, out string? error)
    {
        error = null;
        if (size is 0 or > 32768 || (size & (size - 1)) != 0)
        {
            error = $"queue size {size} is not a power of two up to 32768";
            return null;
        }

        var desc = memory.FromFrontend(descAddress, 16UL * size);
        var avail = memory.FromFrontend(availAddress, 4 + (2UL * size) + 2);
        var used = memory.FromFrontend(usedAddress, 4 + (8UL * size) + 2);
        if (desc is null || avail is null || used is null)
        {
            error = $"a ring (desc 0x{descAddress:x}, avail 0x{availAddress:x}, used 0x{usedAddress:x}, size {size}) is outside guest memory";
            return null;
        }

        if (((nuint)desc & 15) != 0 || ((nuint)avail & 1) != 0 || ((nuint)used & 3) != 0)
        {
            error = "a ring is misaligned";
            return null;
        }

        return new SplitVirtqueue(memory, desc, avail, used, (ushort)size, baseIndex, indirect);
    }

    /// <summary>True when the guest published entries we have not taken.</summary>
    public bool HasAvailable => Volatile.Read(ref *(ushort*)(_avail + 2)) != _lastAvail;

    /// <summary>Asks the guest not to kick while we are draining (a hint; the spec lets it kick anyway).</summary>
    public void SuppressKicks(bool suppress)
    {
        Volatile.Write(ref *(ushort*)_used, suppress ? UsedNoNotify : (ushort)0);
        Interlocked.MemoryBarrier(); // the flag must be visible before we look at the available index again
    }

    /// <summary>Takes the next available chain. Only the queue's own thread calls this.</summary>
    public PopResult TryPop(out DescriptorChain? chain, out string? error)
    {
        chain = null;
        error = null;
        var availIdx = Volatile.Read(ref *(ushort*)(_avail + 2));
        var pending = (ushort)(availIdx - _lastAvail);
        if (pending == 0)
        {
            return PopResult.Empty;
        }

        if (pending > _size)
        {
            error = $"the available index moved {pending} entries ahead on a queue of {_size}";
            return PopResult.Broken;
        }

        var head = Volatile.Read(ref *(ushort*)(_avail + 4 + (2 * (_lastAvail % _size))));
        if (head >= _size)
        {
            error = $"available head {head} is outside the table of {_size}";
            return PopResult.Broken;
        }

        _lastAvail++;
        chain = new DescriptorChain(head);
        error = Walk(chain);
        return error is null ? PopResult.Chain : PopResult.Malformed;
    }

    private string? Walk(DescriptorChain chain)
    {
        var table = _desc;
        uint tableSize = _size;
        uint index = chain.Head;
        var count = 0u;
        var indirect = false;
        var writableSeen = false;
        while (true)
        {
            if (++count > tableSize)
            {
                return $"the chain at {chain.Head} is longer than its table ({tableSize}) or loops";
            }

            // One read of each field: the guest may change the table under us.
            var d = new ReadOnlySpan<byte>(table + (16 * index), 16);
            var address = BinaryPrimitives.ReadUInt64LittleEndian(d);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(d[12..]);
            var next = BinaryPrimitives.ReadUInt16LittleEndian(d[14..]);

            if ((flags & DescIndirect) != 0)
            {
                if (!_indirect || indirect)
                {
                    return indirect ? "an indirect table inside an indirect table" : "an indirect descriptor, not negotiated";
                }

                if ((flags & DescNext) != 0 || length == 0 || length % 16 != 0 || length / 16 > MaxIndirect)
                {
                    return $"an indirect descriptor of {length} bytes (flags 0x{flags:x})";
                }

                table = _memory.FromGuest(address, length);
                if (table is null)
                {
                    return $"an indirect table at 0x{address:x} (+{length}) is outside guest memory";
                }

                if (((nuint)table & 1) != 0)
                {
                    return "a misaligned indirect table";
                }

                indirect = true;
                tableSize = length / 16;
                index = 0;
                count = 0;
                continue;
            }

            var data = _memory.FromGuest(address, length);
            if (data is null)
            {
                return $"a descriptor at 0x{address:x} (+{length}) is outside guest memory";
            }

            if ((flags & DescWrite) != 0)
            {
                writableSeen = true;
                chain.AddWritable(data, length);
            }
            else if (writableSeen)
            {
                return "a device-readable descriptor after a writable one";
            }
            else if (length > MaxReadable - chain.ReadableLength)
            {
                return $"the readable part is over {MaxReadable} bytes";
            }
            else
            {
                chain.AddReadable(data, length);
            }

            if ((flags & DescNext) == 0)
            {
                return null;
            }

            if (next >= tableSize)
            {
                return $"next index {next} is outside the table of {tableSize}";
            }

            index = next;
        }
    }

    /// <summary>
    /// Puts a chain in the used ring with <paramref name="written"/> bytes; true when the guest
    /// wants an interrupt for it. Any thread; nothing happens once <see cref="Detach"/>ed.
    /// </summary>
    public bool Complete(ushort head, uint written)
    {
        lock (_usedLock)
        {
            if (_detached)
            {
                return false;
            }

            var slot = _used + 4 + (8 * (_usedIdx % _size));
            *(uint*)slot = head;
            *(uint*)(slot + 4) = written;
            _usedIdx++;
            Volatile.Write(ref *(ushort*)(_used + 2), _usedIdx); // release: the element before the index
        }

        Interlocked.MemoryBarrier(); // the index before we read the guest's flags
        return (Volatile.Read(ref *(ushort*)_avail) & AvailNoInterrupt) == 0;
    }

    /// <summary>After this no completion touches the rings (the ring was stopped; guest memory may go).</summary>
    public void Detach()
    {
        lock (_usedLock)
        {
            _detached = true;
        }
    }
}
