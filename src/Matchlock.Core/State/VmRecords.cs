namespace Matchlock.Core.State;

/// <summary>What a sandbox records about itself when it starts (never any secret value).</summary>
/// <param name="OwnerStartTime">Field 22 of /proc/PID/stat: tells a reused PID from the owner.</param>
public sealed record VmRegistration(
    string Id,
    string Image,
    DateTimeOffset Created,
    int OwnerPid,
    string OwnerStartTime,
    string Hostname,
    int Cpus,
    int MemoryMb,
    string VmDir);

/// <summary>One VM row. <see cref="Status"/> is effective: <see cref="VmStatus.Crashed"/> when the owner is gone.</summary>
/// <param name="RecordedStatus">The last transition written, whatever the owner's fate.</param>
/// <param name="Reason">Why it failed, for <see cref="VmStatus.Failed"/>.</param>
public sealed record VmRecord(
    string Id,
    string Image,
    DateTimeOffset Created,
    int OwnerPid,
    string OwnerStartTime,
    VmStatus Status,
    VmStatus RecordedStatus,
    string? Reason,
    string Hostname,
    int Cpus,
    int MemoryMb,
    string VmDir);

/// <summary>One entry of the append-only lifecycle log.</summary>
public sealed record VmLifecycleEntry(VmStatus Status, DateTimeOffset Time, string? Reason);

/// <summary>Kinds of things a VM holds that must be released when it goes.</summary>
public enum VmResourceKind
{
    /// <summary>A network namespace name (with its tap and nftables table inside).</summary>
    Netns,

    /// <summary>A disk image file the VM writes.</summary>
    Disk,

    /// <summary>A UNIX socket path.</summary>
    Socket,

    /// <summary>The VMM's process id.</summary>
    QemuPid,

    /// <summary>
    /// An ext4 image attached with <c>--disk</c> (a named volume or a host file): recorded so
    /// <c>inspect</c> shows it, and never released by <c>rm</c>/<c>prune</c> (it outlives the VM).
    /// </summary>
    AttachedDisk,

    /// <summary>
    /// A host listener forwarding to the guest (<c>run -p</c>), as <c>127.0.0.1:8080 -> 80</c>:
    /// shown by <c>inspect</c>; it is the owner's socket and goes with the owner process.
    /// </summary>
    Listener,

    /// <summary>
    /// A VFS mount (<c>-v</c>), as <c>/host/folder -> /guest/path (host_fs)</c>: shown by
    /// <c>inspect</c>; the owner serves it and it goes with the owner (nothing on the host to release).
    /// </summary>
    VfsMount,
}

/// <summary>A resource a VM holds: a name, path or pid, never a secret.</summary>
public sealed record VmResource(VmResourceKind Kind, string Value);
