namespace Matchlock.Core.Vm;

/// <summary>
/// A raw disk image attached as <c>virtio-blk-device</c>. The guest finds it by
/// <paramref name="Serial"/> (<c>/sys/block/vdX/serial</c>), never by order (CONTRACTS).
/// </summary>
/// <param name="Path">Raw image on the host.</param>
/// <param name="Serial">virtio-blk serial, at most 20 ASCII characters (the virtio id field size).</param>
/// <param name="ReadOnly">Attach read-only (the shared EROFS image, docs/ARCHITECTURE.md D5).</param>
public sealed record VmDisk(string Path, string Serial, bool ReadOnly)
{
    /// <summary>QEMU <c>cache=</c> mode; see <see cref="VmDiskCache"/>.</summary>
    public VmDiskCache Cache { get; init; } = VmDiskCache.Writeback;
}
