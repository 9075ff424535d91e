namespace Matchlock.Core.Vm;

/// <summary>Everything a backend needs to start one VM. Immutable; copy with <c>with</c>.</summary>
/// <param name="Id">VM id, used in QEMU's <c>-name</c> and in messages.</param>
/// <param name="KernelPath">bzImage/vmlinuz booted directly.</param>
/// <param name="InitrdPath">The initramfs (CONTRACTS layout).</param>
/// <param name="ExtraKernelCmdline">
/// Appended after our own flags, so it can override them (the kernel applies the last
/// occurrence of a parameter). Never put secrets here: the guest and <c>ps</c> can read it.
/// </param>
/// <param name="Cpus">vCPUs.</param>
/// <param name="MemoryMb">Guest RAM in MiB.</param>
/// <param name="Disks">Block devices, each found by serial in the guest.</param>
/// <param name="ChannelSocketPath">UNIX socket the host listens on and QEMU connects to (docs/ARCHITECTURE.md D6).</param>
/// <param name="ConsoleLogPath">File receiving the guest serial console.</param>
/// <param name="QmpSocketPath">QMP control socket QEMU listens on.</param>
/// <param name="WorkDir">Per-VM directory for <c>qemu.err</c> and <c>qemu.pid</c>; must exist.</param>
/// <param name="Accel">From <see cref="AccelSelector"/>.</param>
public sealed record VmSpec(
    string Id,
    string KernelPath,
    string InitrdPath,
    string ExtraKernelCmdline,
    int Cpus,
    int MemoryMb,
    IReadOnlyList<VmDisk> Disks,
    string ChannelSocketPath,
    string ConsoleLogPath,
    string QmpSocketPath,
    string WorkDir,
    VmAccel Accel)
{
    /// <summary>The VM's NIC (docs/ARCHITECTURE.md D7): QEMU runs in its namespace and attaches to its tap. Null: no NIC.</summary>
    public VmNetworkAttachment? Network { get; init; }

    /// <summary>
    /// virtio-fs devices served over vhost-user (docs/VFS.md "vhost-user transport"). Any of them
    /// makes guest RAM a shared memfd and the virtio-mmio transport modern (docs/PLATFORM.md
    /// "Sharing host folders"); VMs without them are started as before.
    /// </summary>
    public IReadOnlyList<VmVirtiofsDevice> VirtiofsDevices { get; init; } = [];
}

/// <summary>One <c>vhost-user-fs-device</c>: the back-end's UNIX socket (bound before QEMU starts) and the tag the guest mounts.</summary>
public sealed record VmVirtiofsDevice(string SocketPath, string Tag);
