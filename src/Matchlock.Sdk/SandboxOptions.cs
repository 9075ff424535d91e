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

    /// <summary>Where relative <see cref="Mounts"/> paths go (server default <c>/workspace</c>).</summary>
    public string? Workspace { get; init; }

    /// <summary>VFS mounts by guest path (absolute, or relative to <see cref="Workspace"/>), served by the host.</summary>
    public IReadOnlyDictionary<string, VfsMount>? Mounts { get; init; }

    /// <summary>
    /// VFS interception: host rules applied to every operation on the <see cref="Mounts"/>, file
    /// events, and hooks run in this process (<see cref="VfsHookRule"/>).
    /// </summary>
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

/// <summary>VFS interception: rules the host applies to file operations, whether it reports them as events, and hooks run in this process.</summary>
public sealed record VfsInterception
{
    /// <summary>
    /// Report every successful file operation on a VFS mount as an <c>event</c> notification
    /// (<see cref="Sandbox.WatchEventsAsync"/>, <see cref="Sandbox.WatchFileEventsAsync"/>).
    /// Sent as true whenever a rule has an after-hook (<see cref="VfsHookRule.Hook"/>,
    /// <see cref="VfsHookRule.DangerousHook"/>): those run on the events.
    /// </summary>
    public bool EmitEvents { get; init; }

    /// <summary>The rules, in order.</summary>
    public IReadOnlyList<VfsHookRule> Rules { get; init; } = [];
}

/// <summary>
/// A VFS rule. Without a callback it is a host rule: the server checks it on every operation on a
/// VFS mount and a <see cref="VfsHookAction.Block"/> gives the guest <c>EPERM</c>. With one
/// callback (at most one per rule) it runs in this process instead and is not sent:
/// <list type="bullet">
/// <item><see cref="ActionHook"/> (before): allows or blocks this SDK's own
/// <see cref="Sandbox.WriteFileAsync(string, ReadOnlyMemory{byte}, UnixFileMode?, CancellationToken)"/> (op <c>write</c>),
/// <see cref="Sandbox.ReadFileAsync"/> (<c>read</c>) and <see cref="Sandbox.ListFilesAsync"/> (<c>readdir</c>);</item>
/// <item><see cref="MutateHook"/> (before): replaces the content this SDK's <c>WriteFileAsync</c> sends;</item>
/// <item><see cref="Hook"/> and <see cref="DangerousHook"/> (after): run on the host's file events,
/// whatever caused them (the guest's programs included).</item>
/// </list>
/// Callbacks see what this SDK sends, not what the guest's programs do: only host rules can stop those.
/// </summary>
public sealed record VfsHookRule
{
    /// <summary>A name for logs and errors.</summary>
    public string? Name { get; init; }

    /// <summary>
    /// When it runs. Host rules: null means before on the server. Callback rules: null takes the
    /// callback's own phase (before for action and mutate hooks, after for after-hooks); another
    /// value is refused.
    /// </summary>
    public VfsHookPhase? Phase { get; init; }

    /// <summary>What a host rule does (null: allow). Callback rules leave it null or <see cref="VfsHookAction.Allow"/>.</summary>
    public VfsHookAction? Action { get; init; }

    /// <summary>The operations it matches (<see cref="VfsOps"/>; none: all).</summary>
    public IReadOnlyList<string> Ops { get; init; } = [];

    /// <summary>
    /// A glob over the full guest path (none: all): <c>*</c> and <c>?</c> stay within one path
    /// segment, <c>**</c> crosses segments (<c>/workspace/**</c> is everything below
    /// /workspace), <c>[a-z]</c>/<c>[!…]</c> are classes, <c>\x</c> is a literal x. The server matches
    /// host rules the same way.
    /// </summary>
    public string? Path { get; init; }

    /// <summary>How long the rule may take: sent as <c>timeout_ms</c> for host rules; for after-hooks the deadline of their token.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// Before this SDK's own file calls: return <see cref="VfsHookAction.Block"/> to refuse the
    /// call (it throws <see cref="MatchlockVfsHookBlockedException"/> and nothing is sent). Runs on
    /// the caller's thread; an exception it throws propagates to the caller.
    /// </summary>
    public Func<VfsActionRequest, VfsHookAction>? ActionHook { get; init; }

    /// <summary>
    /// Before this SDK's own writes: returns the content to send instead, or null to keep it.
    /// Mutate hooks run in order, each on the previous one's output. Runs on the caller's thread.
    /// </summary>
    public Func<VfsMutateRequest, byte[]?>? MutateHook { get; init; }

    /// <summary>
    /// After a matching file event. Runs on the thread pool, one event at a time: events that
    /// arrive while this sandbox's after-hooks run (the ones they cause among them) are not given
    /// to them, so a hook that writes files cannot trigger itself. Exceptions are ignored.
    /// </summary>
    public Func<FileEvent, CancellationToken, ValueTask>? Hook { get; init; }

    /// <summary>
    /// After a matching file event, given the sandbox to act on. Runs for every matching event,
    /// concurrently and without the re-entry guard of <see cref="Hook"/>: a hook that writes what
    /// it matches triggers itself again. Exceptions are ignored.
    /// </summary>
    public Func<Sandbox, FileEvent, CancellationToken, ValueTask>? DangerousHook { get; init; }
}
