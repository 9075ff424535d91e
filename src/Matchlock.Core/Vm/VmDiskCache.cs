namespace Matchlock.Core.Vm;

/// <summary>QEMU block cache modes we use (qemu(1), <c>-drive cache=</c>).</summary>
public enum VmDiskCache
{
    /// <summary>
    /// Host page cache, guest flushes honoured. The default: a read-only image shared by many
    /// VMs is then read from disk once.
    /// </summary>
    Writeback,

    /// <summary>Host page cache, guest flushes ignored: fastest, loses data on a host crash. For disks deleted with the VM.</summary>
    Unsafe,

    /// <summary>O_DIRECT, no host page cache.</summary>
    None,
}
