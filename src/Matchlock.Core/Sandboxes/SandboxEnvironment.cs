using Matchlock.Core.Images;
using Matchlock.Core.Kernel;
using Matchlock.Core.Vm;

namespace Matchlock.Core.Sandboxes;

/// <summary>The host services a sandbox is built from; tests and embedders can replace any of them.</summary>
public sealed record SandboxEnvironment
{
    public required ImageStore Images { get; init; }

    public required IVmBackend Backend { get; init; }

    public required KernelProvider Kernels { get; init; }

    /// <summary>Path of the static guest binary (see <see cref="GuestBinary.Locate"/>).</summary>
    public required Func<string> GuestBinaryPath { get; init; }

    public required string VmsDir { get; init; }

    public required string CacheDir { get; init; }

    /// <summary>Where named volumes (<c>--disk @NAME:…</c>) live.</summary>
    public string VolumesDir { get; init; } = MatchlockPaths.VolumesDir;

    /// <summary>The VM state database (<c>state.db</c>); null keeps no state (tests, embedders).</summary>
    public string? StatePath { get; init; }

    /// <summary>
    /// Replaces the sealed network with bare plumbing a caller sets up itself (namespace, tap and
    /// redirects to its own listeners): for tests of the plumbing with a real guest, where the
    /// proxy must not forward anything. Called once the VM's id is known (after its owner record
    /// exists, so a sweep sees it alive); the sandbox owns the result. Null: the sealed network
    /// per <see cref="SandboxSpec.Network"/>, or no NIC with <see cref="SandboxSpec.NoNetwork"/>.
    /// </summary>
    internal Func<string, CancellationToken, Task<Network.Plumbing.NetworkNamespace>>? PlumbingOnly { get; init; }

    /// <summary>
    /// Extra guest kernel arguments, a debugging aid (e.g. <c>loglevel=7</c>; the CLI takes
    /// <c>MATCHLOCK_KERNEL_ARGS</c>). The command line is readable in the guest: never secrets.
    /// </summary>
    public string ExtraKernelArgs { get; init; } = "";

    /// <summary>The clock of records, the guest's initial time, network events and certificates (tests pass a fake one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where the sandbox and its owner log (an owner's <c>owner.log</c>); none by default.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory Logging { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;

    /// <summary>The defaults: <see cref="MatchlockPaths"/>, QEMU microvm, Debian's cloud kernel.</summary>
    public static SandboxEnvironment CreateDefault() => new()
    {
        Images = new ImageStore(MatchlockPaths.ImagesDir),
        Backend = new QemuMicrovmBackend(),
        Kernels = new KernelProvider(),
        GuestBinaryPath = GuestBinary.Locate,
        VmsDir = MatchlockPaths.VmsDir,
        CacheDir = MatchlockPaths.CacheDir,
        StatePath = State.VmStateStore.DefaultPath,
    };
}
