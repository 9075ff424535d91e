using Matchlock.Core.Interop;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>One region of the memory table as QEMU sent it.</summary>
/// <param name="GuestAddress">Guest-physical start.</param>
/// <param name="Size">Bytes.</param>
/// <param name="UserAddress">Where QEMU has it mapped (ring addresses are in this space).</param>
/// <param name="MmapOffset">Where the region starts in its file.</param>
internal readonly record struct MemoryRegionSpec(ulong GuestAddress, ulong Size, ulong UserAddress, ulong MmapOffset);

/// <summary>
/// The guest's RAM as QEMU shares it (SET_MEM_TABLE): each region's file mapped MAP_SHARED in
/// this process. Every address the guest gives (descriptors) and QEMU gives (rings) is turned
/// into a pointer here and only here, after checking that the whole span lies inside one region
/// (no overflow of address + length). docs/VFS.md "vhost-user transport".
/// </summary>
internal sealed unsafe class GuestMemory : IDisposable
{
    private readonly Region[] _regions;
    private readonly Lock _gate = new();
    private int _leases; // guarded by _gate
    private bool _disposed; // guarded by _gate
    private bool _unmapped; // guarded by _gate

    private GuestMemory(Region[] regions) => _regions = regions;

    /// <summary>An empty table: every translation fails (before SET_MEM_TABLE).</summary>
    public static GuestMemory Empty { get; } = new([]);

    /// <summary>Maps each region of <paramref name="specs"/> from its descriptor (closed by the caller).</summary>
    /// <exception cref="VhostUserException">A region is empty, overflows, or its file cannot be mapped.</exception>
    public static GuestMemory Map(IReadOnlyList<MemoryRegionSpec> specs, IReadOnlyList<int> fds)
    {
        if (specs.Count != fds.Count || specs.Count > VhostUserConstants.MaxRegions)
        {
            throw new VhostUserException($"a memory table of {specs.Count} regions came with {fds.Count} descriptors");
        }

        var regions = new List<Region>(specs.Count);
        try
        {
            for (var i = 0; i < specs.Count; i++)
            {
                var s = specs[i];
                if (s.Size == 0 || s.GuestAddress + s.Size < s.GuestAddress || s.UserAddress + s.Size < s.UserAddress
                    || s.MmapOffset + s.Size < s.MmapOffset || s.Size + s.MmapOffset > long.MaxValue)
                {
                    throw new VhostUserException($"memory region {i} (guest 0x{s.GuestAddress:x}, size 0x{s.Size:x}, offset 0x{s.MmapOffset:x}) overflows");
                }

                var mapped = VhostNative.MapShared(fds[i], s.Size + s.MmapOffset);
                if (mapped is null)
                {
                    throw new VhostUserException($"mmap of memory region {i} ({s.Size + s.MmapOffset} bytes) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
                }

                regions.Add(new Region(s, mapped));
            }
        }
        catch
        {
            foreach (var r in regions)
            {
                VhostNative.Unmap(r.Mapping, r.Spec.Size + r.Spec.MmapOffset);
            }

            throw;
        }

        return new GuestMemory([.. regions]);
    }

    public int RegionCount => _regions.Length;

    /// <summary>A pointer to <paramref name="length"/> bytes at guest-physical <paramref name="address"/>; null unless all of them lie in one region.</summary>
    public byte* FromGuest(ulong address, ulong length)
    {
        foreach (var r in _regions)
        {
            var offset = address - r.Spec.GuestAddress; // wraps (huge) when address is below the region
            if (address >= r.Spec.GuestAddress && offset < r.Spec.Size && length <= r.Spec.Size - offset)
            {
                return r.Mapping + r.Spec.MmapOffset + offset;
            }
        }

        return null;
    }

    /// <summary>As <see cref="FromGuest"/> for an address in QEMU's own address space (the rings of SET_VRING_ADDR).</summary>
    public byte* FromFrontend(ulong address, ulong length)
    {
        foreach (var r in _regions)
        {
            var offset = address - r.Spec.UserAddress;
            if (address >= r.Spec.UserAddress && offset < r.Spec.Size && length <= r.Spec.Size - offset)
            {
                return r.Mapping + r.Spec.MmapOffset + offset;
            }
        }

        return null;
    }

    /// <summary>
    /// Keeps the mappings alive until <see cref="Release"/>: a request still being answered on
    /// the thread pool writes its reply into guest memory, so a new memory table (or the end of
    /// the connection) must not unmap under it. False once disposed.
    /// </summary>
    public bool TryAcquire()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return false;
            }

            _leases++;
            return true;
        }
    }

    public void Release()
    {
        lock (_gate)
        {
            _leases--;
            UnmapIfUnused();
        }
    }

    /// <summary>Unmaps now, or when the last lease is released.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            UnmapIfUnused();
        }
    }

    private void UnmapIfUnused()
    {
        if (!_disposed || _leases > 0 || _unmapped)
        {
            return;
        }

        _unmapped = true;
        foreach (var r in _regions)
        {
            VhostNative.Unmap(r.Mapping, r.Spec.Size + r.Spec.MmapOffset);
        }
    }

    private readonly struct Region(MemoryRegionSpec spec, byte* mapping)
    {
        public MemoryRegionSpec Spec { get; } = spec;

        public byte* Mapping { get; } = mapping;
    }
}

/// <summary>The frontend broke the vhost-user protocol: the connection ends (fail closed).</summary>
internal sealed class VhostUserException(string message) : OperationFailedException(message);
