using Matchlock.Core.Network;
using Matchlock.Core.Vm;

namespace Matchlock.Core.Sandboxes;

/// <summary>What a sandbox is made of. Immutable; copy with <c>with</c>.</summary>
public sealed record SandboxSpec
{
    /// <summary>Image reference in the local store (<c>busybox</c>, <c>busybox:latest</c>, ...).</summary>
    public required string Image { get; init; }

    /// <summary>CPUs; fractions are rounded up to whole vCPUs and enforced with cgroup <c>cpu.max</c>.</summary>
    public double Cpus { get; init; } = 1;

    public int MemoryMb { get; init; } = 512;

    /// <summary>
    /// Processes and threads the user's commands may have at once in the guest (<c>--pids-limit</c>,
    /// cgroup <c>pids.max</c>); -1: no limit. The guest's agent is outside it, so exec keeps
    /// answering when a fork bomb reaches it.
    /// </summary>
    public int PidsLimit { get; init; } = DefaultPidsLimit;

    /// <summary>The guest's default <c>pids.max</c> for the user's processes.</summary>
    public const int DefaultPidsLimit = 4096;

    /// <summary>Size of the writable upper disk (sparse; only what the guest writes uses space).</summary>
    public int DiskSizeMb { get; init; } = 5120;

    /// <summary>Guest host name; defaults to the VM id.</summary>
    public string? Hostname { get; init; }

    /// <summary>No NIC at all (<c>--no-network</c>).</summary>
    public bool NoNetwork { get; init; } = true;

    /// <summary>The sealed network's policy and settings; ignored with <see cref="NoNetwork"/>.</summary>
    public SandboxNetworkSpec Network { get; init; } = new();

    /// <summary>
    /// ext4 images (<c>--disk</c>: named volumes or host files) attached as extra block devices
    /// and mounted in the guest before any command runs. A writable one is locked for this
    /// sandbox's whole life; a <see cref="DiskMount.ReadOnly"/> one may be shared.
    /// </summary>
    public IReadOnlyList<DiskMount> Disks { get; init; } = [];

    /// <summary>
    /// Host folders (or memory trees) the guest sees through the VFS (<c>-v</c>, docs/VFS.md),
    /// mounted before any command runs. Distinct guest paths.
    /// </summary>
    public IReadOnlyList<Vfs.VfsMountSpec> Mounts { get; init; } = [];

    /// <summary>
    /// Rules, in-process hooks and file events for the <see cref="Mounts"/> (docs/VFS.md "Hooks and
    /// events"); null or empty: the mounts are served without the hook layer.
    /// </summary>
    public Vfs.Hooks.VfsInterception? VfsInterception { get; init; }

    /// <summary>null: <c>MATCHLOCK_ACCEL</c> or auto.</summary>
    public AccelMode? Accel { get; init; }

    /// <summary>How long the guest may take to say hello (default 60 s; the CLI takes <c>MATCHLOCK_BOOT_TIMEOUT</c> seconds).</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Host listeners already forwarding to this sandbox (<c>run -p</c>, bound before boot), recorded for <c>inspect</c>.</summary>
    public IReadOnlyList<string> Listeners { get; init; } = [];

    /// <summary>Delete the VM directory (disks, logs) when the sandbox is disposed (<c>--rm</c>).</summary>
    public bool RemoveOnDispose { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the flag and a valid range.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Image))
        {
            throw new ArgumentException("an image is required (--image NAME)");
        }

        Vfs.VfsMountSpec.CheckDistinct(Mounts);
        VfsInterception?.Validate();

        if (!(Cpus > 0) || double.IsInfinity(Cpus) || Math.Ceiling(Cpus) > Environment.ProcessorCount)
        {
            throw new ArgumentException($"--cpus must be more than 0 and at most {Environment.ProcessorCount} (the host's CPUs); got {Cpus}");
        }

        if (MemoryMb < 64 || MemoryMb > 1024 * 1024)
        {
            throw new ArgumentException($"--memory must be between 64 and 1048576 MB; got {MemoryMb}");
        }

        if (PidsLimit != -1 && (PidsLimit < 1 || PidsLimit > 4 * 1024 * 1024))
        {
            throw new ArgumentException($"--pids-limit must be between 1 and 4194304, or -1 for no limit; got {PidsLimit}");
        }

        if (DiskSizeMb < 16 || DiskSizeMb > 16 * 1024 * 1024)
        {
            throw new ArgumentException($"--disk-size must be between 16 and 16777216 MB; got {DiskSizeMb}");
        }

        if (NoNetwork && Network.Intercepting)
        {
            throw new ArgumentException("--no-network gives the VM no network interface; it cannot be combined with --allow-host, --allow-tcp, --secret or --network-intercept");
        }

        Network.Validate();
        DiskMount.ValidateAll(Disks);

        if (Hostname is { } h && !IsValidHostname(h))
        {
            throw new ArgumentException($"--hostname \"{h}\" is not a valid host name (letters, digits, '-' and '.', at most 63 characters per label)");
        }
    }

    /// <summary>The cgroup v2 <c>cpu.max</c> value for a fractional CPU count, or null for whole CPUs.</summary>
    public string? CpuMax()
    {
        const int period = 100_000;
        return Cpus == Math.Ceiling(Cpus) ? null : $"{(int)Math.Round(Cpus * period)} {period}";
    }

    private static bool IsValidHostname(string name) =>
        name.Length is > 0 and <= 253
        && name.Split('.').All(label => label.Length is > 0 and <= 63
            && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')
            && label[0] != '-' && label[^1] != '-');
}
