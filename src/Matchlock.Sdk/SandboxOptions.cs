namespace Matchlock.Sdk;

/// <summary>
/// What sandbox to create (the params of <c>create</c>). Immutable: derive variants with
/// <c>with { … }</c>. Unset fields are not sent, so the server's defaults apply (1 vCPU,
/// 512 MB memory, 5120 MB disk, private ranges blocked).
/// </summary>
public sealed record SandboxOptions
{
    /// <summary>The image reference, e.g. <c>busybox</c> or <c>python:3.12-alpine</c>. Required.</summary>
    public required string Image { get; init; }

    /// <summary>Skips the in-guest hardening.</summary>
    public bool Privileged { get; init; }

    /// <summary>vCPUs (fractions become a CPU quota).</summary>
    public double? Cpus { get; init; }

    /// <summary>Guest memory in MB.</summary>
    public int? MemoryMb { get; init; }

    /// <summary>Writable disk in MB.</summary>
    public int? DiskSizeMb { get; init; }

    /// <summary>Sent as <c>resources.timeout_seconds</c>; the server accepts it and, like the original, does not enforce it.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Environment variables for every command, added to the image's.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>Hosts the guest may reach (globs: <c>*.example.com</c>). Any entry turns interception on; then nothing else is reachable.</summary>
    public IReadOnlyList<string> AllowHosts { get; init; } = [];

    /// <summary>Extra <c>/etc/hosts</c> entries.</summary>
    public IReadOnlyList<HostMapping> AddHosts { get; init; } = [];

    /// <summary>Whether private address ranges are blocked; null keeps the safe default (blocked).</summary>
    public bool? BlockPrivateIps { get; init; }

    /// <summary>No network interface at all. Conflicts with allow-list, secrets, interception and hook rules.</summary>
    public bool NoNetwork { get; init; }

    /// <summary>Turns interception on even with an empty allow-list, so hosts can be added later with <see cref="Sandbox.AllowListAddAsync"/>.</summary>
    public bool Intercept { get; init; }

    /// <summary>Secrets: the guest sees a placeholder, the host substitutes the value for the secret's hosts only.</summary>
    public IReadOnlyList<SandboxSecret> Secrets { get; init; } = [];

    /// <summary>Network hook rules, static or answered by a callback in this process (<see cref="NetworkHookRule.Hook"/>).</summary>
    public IReadOnlyList<NetworkHookRule> NetworkRules { get; init; } = [];

    /// <summary>DNS servers for the guest.</summary>
    public IReadOnlyList<string> DnsServers { get; init; } = [];

    /// <summary>The guest's host name (default: the sandbox id).</summary>
    public string? Hostname { get; init; }

    /// <summary>The guest NIC's MTU.</summary>
    public int? Mtu { get; init; }

    /// <summary>Raw TCP destinations (<c>HOST:PORT</c>) the guest may reach, as <c>--allow-tcp</c>.</summary>
    public IReadOnlyList<string> AllowTcp { get; init; } = [];

    /// <summary>Guest mount point of the VFS. The server refuses <c>vfs</c> until workspace support lands.</summary>
    public string? Workspace { get; init; }

    /// <summary>VFS mounts by guest path. The server refuses <c>vfs</c> until workspace support lands.</summary>
    public IReadOnlyDictionary<string, VfsMount>? Mounts { get; init; }

    /// <summary>VFS interception rules. The server refuses <c>vfs</c> until workspace support lands.</summary>
    public VfsInterception? VfsInterception { get; init; }

    /// <summary>ext4 block devices to attach.</summary>
    public IReadOnlyList<ExtraDisk> ExtraDisks { get; init; } = [];

    /// <summary>Overrides of the image's config, field by field.</summary>
    public ImageConfig? ImageConfig { get; init; }

    /// <summary>Ports to forward once the sandbox runs (<c>port_forward</c> right after <c>create</c>).</summary>
    public IReadOnlyList<PortForward> PortForwards { get; init; } = [];

    /// <summary>Host addresses for <see cref="PortForwards"/> (default 127.0.0.1).</summary>
    public IReadOnlyList<string> PortForwardAddresses { get; init; } = [];
}

/// <summary>An <c>/etc/hosts</c> entry: <paramref name="Host"/> resolves to <paramref name="Ip"/> (or <c>host-gateway</c>).</summary>
public sealed record HostMapping(string Host, string Ip);

/// <summary>
/// A secret: the guest's <c>$Name</c> holds a placeholder; the host puts <paramref name="Value"/>
/// in place of it in requests to <paramref name="Hosts"/> (header values and query), and blocks a
/// request that carries it anywhere else.
/// </summary>
public sealed record SandboxSecret(string Name, string Value, IReadOnlyList<string> Hosts)
{
    /// <summary>The placeholder the guest sees; null lets the host pick <c>SANDBOX_SECRET_…</c>.</summary>
    public string? Placeholder { get; init; }
}

/// <summary>An ext4 image attached as a block device and mounted at <paramref name="GuestMount"/>.</summary>
public sealed record ExtraDisk(string HostPath, string GuestMount, bool ReadOnly = false);

/// <summary>Overrides of the image's OCI config; null fields keep the image's value.</summary>
public sealed record ImageConfig
{
    /// <summary>The user commands run as.</summary>
    public string? User { get; init; }

    /// <summary>The default working directory.</summary>
    public string? WorkingDir { get; init; }

    /// <summary>The entrypoint.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary>The default command.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary>Replaces the image's environment (<see cref="SandboxOptions.Env"/> adds to it).</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
}

/// <summary>How a VFS mount is backed.</summary>
public sealed record VfsMount
{
    /// <summary><c>memory</c>, <c>host_fs</c> or <c>overlay</c>.</summary>
    public required string Type { get; init; }

    /// <summary>The host directory (for <c>host_fs</c> and <c>overlay</c>).</summary>
    public string? HostPath { get; init; }

    /// <summary>Mounted read-only.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>An in-memory file system.</summary>
    public static VfsMount Memory() => new() { Type = "memory" };

    /// <summary>A live view of a host directory.</summary>
    public static VfsMount HostDirectory(string hostPath, bool readOnly = false) => new() { Type = "host_fs", HostPath = hostPath, ReadOnly = readOnly };

    /// <summary>A private copy-on-write snapshot of a host directory.</summary>
    public static VfsMount Overlay(string hostPath) => new() { Type = "overlay", HostPath = hostPath };
}

/// <summary>VFS interception: rules the host applies to file operations, and whether it reports them as events.</summary>
public sealed record VfsInterception
{
    /// <summary>Report file operations as <c>event</c> notifications (<see cref="Sandbox.WatchEventsAsync"/>).</summary>
    public bool EmitEvents { get; init; }

    /// <summary>The rules, in order.</summary>
    public IReadOnlyList<VfsHookRule> Rules { get; init; } = [];
}

/// <summary>A host-side VFS rule.</summary>
public sealed record VfsHookRule
{
    /// <summary>What to do with a matching operation (e.g. <c>allow</c>, <c>block</c>).</summary>
    public required string Action { get; init; }

    /// <summary>A name for logs.</summary>
    public string? Name { get; init; }

    /// <summary><c>before</c> or <c>after</c>.</summary>
    public string? Phase { get; init; }

    /// <summary>The operations it matches (e.g. <c>write</c>, <c>open</c>).</summary>
    public IReadOnlyList<string> Ops { get; init; } = [];

    /// <summary>A glob over the guest path.</summary>
    public string? Path { get; init; }

    /// <summary>How long the rule may take.</summary>
    public int? TimeoutMs { get; init; }
}
