using System.Text.Json.Serialization;

namespace Matchlock.Protocol.Messages;

/// <summary>The opening payload of a host-opened stream. The <c>op</c> property selects the kind.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "op")]
[JsonDerivedType(typeof(ConfigureRequest), "configure")]
[JsonDerivedType(typeof(ExecRequest), "exec")]
[JsonDerivedType(typeof(WriteFileRequest), "write_file")]
[JsonDerivedType(typeof(ReadFileRequest), "read_file")]
[JsonDerivedType(typeof(ListFilesRequest), "list_files")]
[JsonDerivedType(typeof(ShutdownRequest), "shutdown")]
[JsonDerivedType(typeof(PortConnectRequest), "port_connect")]
[JsonDerivedType(typeof(VfsMountRequest), "vfs_mount")]
public abstract record GuestRequest;

/// <summary>
/// Sent once, right after the guest's hello, before any other request. Carries what the kernel
/// command line must not (it is world-readable in the guest and logged on the host).
/// </summary>
public sealed record ConfigureRequest : GuestRequest
{
    public required string Hostname { get; init; }

    /// <summary>Host wall clock, so the guest (which has no RTC on microvm) starts with the right time.</summary>
    public long UnixTimeMs { get; init; }

    /// <summary>Extra /etc/hosts lines as (name, address).</summary>
    public IReadOnlyList<HostEntry> Hosts { get; init; } = [];

    /// <summary>Name servers for /etc/resolv.conf; empty leaves the image's file alone.</summary>
    public IReadOnlyList<string> DnsServers { get; init; } = [];

    /// <summary>cgroup v2 <c>cpu.max</c> value ("QUOTA PERIOD") for fractional CPUs; null = no limit.</summary>
    public string? CpuMax { get; init; }

    /// <summary>
    /// <c>pids.max</c> of the cgroup the user's processes run in (<c>--pids-limit</c>): at most
    /// this many processes and threads at once; 0 or less = no limit; null (an older host) = the
    /// guest's default, 4096. The agent is outside that group and never counted.
    /// </summary>
    public int? PidsLimit { get; init; }

    /// <summary>The guest's NIC settings (docs/ARCHITECTURE.md D7); null: the VM has no NIC, leave networking alone.</summary>
    public GuestNetworkConfig? Network { get; init; }

    /// <summary>
    /// PEM of the sandbox's interception CA, added to the image's trust bundles; null: none.
    /// A certificate, never a key.
    /// </summary>
    public string? CaCertificatePem { get; init; }

    /// <summary>
    /// ext4 disks (<c>--disk</c>) to mount before any exec, in this order (parents first). Mounted
    /// last, after every file configure writes, so none of those lands on a user's volume. If one
    /// fails, the ones already mounted are unmounted again and the configure fails.
    /// </summary>
    public IReadOnlyList<GuestDisk> Disks { get; init; } = [];
}

public sealed record HostEntry(string Name, string Address);

/// <summary>One <c>--disk</c>: the virtio serial to find it by, where to mount it, and how.</summary>
/// <param name="Serial">virtio-blk serial (<c>/sys/block/vdX/serial</c>), e.g. <c>mldisk0</c>.</param>
/// <param name="Path">Absolute, normalised mount point in the guest; created when missing.</param>
/// <param name="ReadOnly">Mount <c>ro</c> (the device is read-only too).</param>
public sealed record GuestDisk(string Serial, string Path, bool ReadOnly);

/// <summary>Static IPv4 configuration of the guest's NIC; the gateway is the host end of the tap.</summary>
public sealed record GuestNetworkConfig
{
    /// <summary>Dotted IPv4 address of the guest.</summary>
    public required string Address { get; init; }

    public required int PrefixLength { get; init; }

    /// <summary>Dotted IPv4 address of the default gateway (on-link).</summary>
    public required string Gateway { get; init; }

    public int Mtu { get; init; } = 1500;

    /// <summary>Interface name; null means <c>eth0</c>.</summary>
    public string? Interface { get; init; }
}

/// <summary>Runs one command. Channels: stdin (host→guest), stdout and stderr (guest→host).</summary>
public sealed record ExecRequest : GuestRequest
{
    /// <summary>argv; argv[0] is looked up on the PATH of <see cref="Env"/> inside the guest.</summary>
    public required IReadOnlyList<string> Argv { get; init; }

    /// <summary>The full environment, "KEY=VALUE" in order. The guest adds PATH/HOME/HOSTNAME/TERM if missing.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    public string? WorkingDir { get; init; }

    /// <summary>Create <see cref="WorkingDir"/> (0755, root, with parents) when missing, as <c>docker run -w</c> does; otherwise a missing one fails the exec.</summary>
    public bool CreateWorkingDir { get; init; }

    /// <summary>uid, uid:gid, name or name:group, resolved against the image's /etc/passwd and /etc/group.</summary>
    public string? User { get; init; }

    /// <summary>Run on a PTY: stdout carries the terminal, stderr is unused.</summary>
    public bool Tty { get; init; }

    public int Rows { get; init; } = TerminalDefaults.Rows;

    public int Cols { get; init; } = TerminalDefaults.Cols;

    /// <summary>The host will send stdin data; otherwise the command gets /dev/null.</summary>
    public bool Stdin { get; init; }

    /// <summary>Grace between SIGTERM and SIGKILL when the exec is cancelled.</summary>
    public int KillGraceMs { get; init; } = 5000;
}

/// <summary>Writes a file from the stdin channel. Parents are created 0755.</summary>
public sealed record WriteFileRequest : GuestRequest
{
    public required string Path { get; init; }

    /// <summary>Permission bits; 0 means 0644.</summary>
    public int Mode { get; init; }
}

/// <summary>Reads a regular file onto the stdout channel.</summary>
public sealed record ReadFileRequest : GuestRequest
{
    public required string Path { get; init; }

    /// <summary>Refuse files larger than this.</summary>
    public long MaxBytes { get; init; } = 16 * 1024 * 1024;
}

public sealed record ListFilesRequest : GuestRequest
{
    public required string Path { get; init; }
}

/// <summary>Stop every process, sync, and power off. The reply comes before the power-off.</summary>
public sealed record ShutdownRequest : GuestRequest
{
    public int GraceMs { get; init; } = 2000;
}

/// <summary>
/// Opens a TCP connection to a port on the guest's loopback (port forwarding, docs/ARCHITECTURE.md D6). Bytes
/// the host writes on stdin go to the connection; what the guest service sends comes back on
/// stdout. EOF on either side half-closes the other. The reply comes once both directions have
/// ended; a failed connect replies at once with the errno name (ECONNREFUSED, ETIMEDOUT).
/// </summary>
public sealed record PortConnectRequest : GuestRequest
{
    /// <summary>TCP port in the guest, 1–65535.</summary>
    public required int Port { get; init; }
}

/// <summary>
/// Mounts a FUSE filesystem at <see cref="Path"/> whose server is the host (docs/VFS.md): the
/// stream then relays the kernel's FUSE messages. Each request the guest reads from
/// <c>/dev/fuse</c> goes out unchanged on stdout; the host's replies come back to back on stdin,
/// each delimited by its <c>fuse_out_header.len</c>. Once mounted the guest writes <c>"ok\n"</c>
/// on stderr (<c>"error: REASON\n"</c> and a failure reply if the mount failed). The stream ends
/// with an ok reply when the host sends EOF on stdin or the filesystem is unmounted in the guest;
/// the guest unmounts (lazily) in either case. The host sends it after <c>configure</c> and
/// waits for the ok before running commands; the stream lives as long as the mount.
/// </summary>
public sealed record VfsMountRequest : GuestRequest
{
    /// <summary>The host's name for the mount, for logs only.</summary>
    public required string MountId { get; init; }

    /// <summary>Absolute, normalised mount point in the guest; created 0755 with parents when missing.</summary>
    public required string Path { get; init; }

    /// <summary>Mount with <c>ro</c>: the guest's kernel refuses writes before they reach the host.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// A single-file mount (docs/VFS.md "Single files"): the name of the one file in the mounted
    /// tree to bind-mount onto <see cref="BindTarget"/> once mounted (read-only with
    /// <see cref="ReadOnly"/>). The target is created as an empty file (with its parents) when
    /// missing; a directory there fails the mount. Unbound before the tree is unmounted.
    /// </summary>
    public string? BindFile { get; init; }

    /// <summary>Absolute, normalised guest path the <see cref="BindFile"/> appears at.</summary>
    public string? BindTarget { get; init; }

    /// <summary>
    /// Set: mount the virtiofs device with this tag (the host serves it over vhost-user, docs/VFS.md
    /// "vhost-user transport"); the stream then carries no FUSE traffic and only says when to
    /// unmount (end of stdin). Null: the relay over this stream (the channel transport).
    /// </summary>
    public string? VirtiofsTag { get; init; }
}
