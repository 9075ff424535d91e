using Matchlock.Core.Events;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Hooks;
using Matchlock.Core.Vfs.Fuse;
using Matchlock.Core.Vfs.VhostUser;
using Matchlock.Core.Vm;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.Mounts;

/// <summary>
/// A sandbox's VFS mounts on the host (docs/VFS.md): one provider and one mount stream each. By
/// default each mount is a virtio-fs device served by our own vhost-user back-end
/// (<see cref="VhostUserFsBackend"/>, sockets bound before QEMU starts, docs/VFS.md "vhost-user
/// transport"); with <c>MATCHLOCK_VFS_TRANSPORT=channel</c> the guest relays FUSE over the stream
/// and <see cref="FuseRelayHost"/> serves it. Either way the guest mounts and answers "ok" on
/// the stream's stderr before any command runs, and unmounts at the end of the stream's stdin.
/// Disposing ends every mount (the guest unmounts) and releases the back-ends and providers.
/// </summary>
internal sealed class VfsMounts : IAsyncDisposable
{
    /// <summary>How long the guest may take to mount one (loading the fuse module the first time).</summary>
    private static readonly TimeSpan MountTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Selects the transport: <c>channel</c> for the relay over the guest channel; anything else (or unset) for vhost-user.</summary>
    public const string TransportVariable = "MATCHLOCK_VFS_TRANSPORT";

    /// <summary>
    /// For benchmarks only: <c>virtiofsd</c> serves host folders with Debian's virtiofsd instead of
    /// our back-end — no hooks, no ownership mapping, none of our confinement (docs/VFS.md).
    /// </summary>
    public const string BackendVariable = "MATCHLOCK_VFS_BACKEND";

    private readonly List<Mounted> _mounts = [];
    private readonly ILogger _log;
    private readonly VfsHookEngine? _hooks;
    private readonly bool _vhostUser;
    private readonly bool _virtiofsd;

    private VfsMounts(ILogger log, VfsHookEngine? hooks = null)
    {
        _log = log;
        _hooks = hooks;
        _vhostUser = !string.Equals(Environment.GetEnvironmentVariable(TransportVariable), "channel", StringComparison.Ordinal);

        // The benchmark's stand-in has none of the hook layer: never used for a sandbox that asked for hooks.
        _virtiofsd = _vhostUser && hooks is null && string.Equals(Environment.GetEnvironmentVariable(BackendVariable), "virtiofsd", StringComparison.Ordinal);
    }

    public static VfsMounts None { get; } = new(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    /// <summary>
    /// The providers for <paramref name="specs"/>, opened before the VM starts (a bad host folder
    /// fails the start early). With a non-empty <paramref name="interception"/> every mount is
    /// served through the hook layer (<see cref="HookedProvider"/>), its file events going to
    /// <paramref name="events"/>.
    /// </summary>
    /// <exception cref="SandboxStartException">A host folder could not be opened, or a mount type is not available.</exception>
    public static VfsMounts Prepare(IReadOnlyList<VfsMountSpec> specs, VfsInterception? interception, SandboxEventLog? events, TimeProvider time, ILogger log)
    {
        var hooks = interception is null || interception.IsEmpty ? null : new VfsHookEngine(interception, events, time, log);
        var mounts = new VfsMounts(log, hooks);
        try
        {
            foreach (var spec in specs)
            {
                // An overlay's view needs the VM directory (its upper layer lives there): PrepareOverlays.
                mounts._mounts.Add(new Mounted(spec, spec.Type == VfsMountType.Overlay ? null : Open(spec)));
            }
        }
        catch
        {
            foreach (var m in mounts._mounts)
            {
                m.Provider?.Dispose();
            }

            throw;
        }

        return mounts;
    }

    /// <summary>
    /// The overlay mounts' views, once the VM directory exists: the host's overlayfs with the user's
    /// folder as its lower layer (never written) and the guest's changes in
    /// <c>vfs/N/upper</c> of the VM directory, served like a host folder. Nothing is copied, so
    /// the start costs the same whatever the folder's size; the changes go with the VM directory.
    /// </summary>
    /// <exception cref="SandboxStartException">The overlay could not be mounted (needs root).</exception>
    public void PrepareOverlays(string vmDir)
    {
        for (var i = 0; i < _mounts.Count; i++)
        {
            var mount = _mounts[i];
            if (mount.Spec.Type != VfsMountType.Overlay)
            {
                continue;
            }

            var dir = Path.Combine(vmDir, "vfs", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (mount.Spec.IsFile)
            {
                mount.Provider = PrivateCopy(mount.Spec, dir);
                continue;
            }

            var merged = Path.Combine(dir, "merged");
            try
            {
                foreach (var sub in new[] { "upper", "work", "merged" })
                {
                    Directory.CreateDirectory(Path.Combine(dir, sub), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }

                // The upper's root takes the folder's owner and mode, so the guest sees the folder as it is.
                var folder = new DirectoryInfo(mount.Spec.HostPath!);
                File.SetUnixFileMode(Path.Combine(dir, "upper"), folder.UnixFileMode);
                Interop.HostMounts.MountOverlay(mount.Spec.HostPath!, Path.Combine(dir, "upper"), Path.Combine(dir, "work"), merged);
                mount.Merged = merged;
                mount.Provider = HostFsProvider.Open(merged, readOnly: false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new SandboxStartException(
                    $"cannot make the overlay of {mount.Spec.HostPath} for {mount.Spec.GuestPath}: {ex.Message}" +
                    (Interop.LinuxNative.EffectiveUserId == 0 ? "" : " (overlay mounts need root; use :ro or :host_fs)"),
                    ex);
            }
        }
    }

    /// <summary>
    /// An overlay of one file: a copy in the VM directory (its cost is the file's size, unlike a
    /// folder's overlay), served as the only entry of its folder; the copy goes with the VM.
    /// </summary>
    private static SingleFileProvider PrivateCopy(VfsMountSpec spec, string dir)
    {
        try
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var name = Path.GetFileName(spec.HostPath!);
            File.Copy(spec.HostPath!, Path.Combine(dir, name));
            return new SingleFileProvider(HostFsProvider.Open(dir, readOnly: false), name);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SandboxStartException($"cannot copy {spec.HostPath} for {spec.GuestPath}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// What the guest is asked to mount for a spec: a folder at its guest path; a single file as the
    /// one-entry view of its folder at a hidden path, bound onto its guest path (docs/VFS.md "Single files").
    /// </summary>
    internal static VfsMountRequest RequestFor(VfsMountSpec spec, int index) => spec.IsFile
        ? new VfsMountRequest
        {
            MountId = spec.HostPath!,
            Path = $"{HiddenMounts}/{index.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
            ReadOnly = spec.Type == VfsMountType.ReadOnly,
            BindFile = Path.GetFileName(spec.HostPath!),
            BindTarget = spec.GuestPath,
        }
        : new VfsMountRequest { MountId = spec.HostPath ?? "memory", Path = spec.GuestPath, ReadOnly = spec.Type == VfsMountType.ReadOnly };

    /// <summary>Where the guest mounts the one-entry views of single-file mounts.</summary>
    internal const string HiddenMounts = "/run/matchlock/vfs";

    public IReadOnlyList<VfsMountSpec> Specs => [.. _mounts.Select(m => m.Spec)];

    /// <summary>The virtio-fs devices QEMU must have (empty with the channel transport); valid after <see cref="ListenAsync"/>.</summary>
    public IReadOnlyList<VmVirtiofsDevice> Devices => [.. _mounts.Where(m => m.Device is not null).Select(m => m.Device!)];

    /// <summary>
    /// With the vhost-user transport, binds one back-end socket per mount in the VM directory
    /// (<c>vfsN.sock</c>, tag <c>mlN</c>) before QEMU starts; QEMU connects to each as it starts.
    /// </summary>
    /// <exception cref="SandboxStartException">A socket could not be bound (or virtiofsd started).</exception>
    public async Task ListenAsync(string vmDir, CancellationToken cancellationToken)
    {
        if (!_vhostUser)
        {
            return;
        }

        for (var i = 0; i < _mounts.Count; i++)
        {
            var mount = _mounts[i];
            var index = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var device = new VmVirtiofsDevice(Path.Combine(vmDir, $"vfs{index}.sock"), "ml" + index);
            if (System.Text.Encoding.UTF8.GetByteCount(device.SocketPath) > 107)
            {
                // sockaddr_un.sun_path is 108 bytes including the NUL (as for the channel's chan.sock).
                throw new SandboxStartException($"the VFS socket path '{device.SocketPath}' is longer than a UNIX socket path may be (107 bytes); use a shorter MATCHLOCK_HOME");
            }

            try
            {
                if (_virtiofsd && !mount.Spec.IsFile && mount.HostFolder is { } folder)
                {
                    mount.Virtiofsd = await VirtiofsdProcess.StartAsync(device.SocketPath, folder, cancellationToken);
                }
                else
                {
                    // Requests that may wait on in-process hooks go to the pool, so one slow hook does not hold up the queue.
                    mount.Backend = VhostUserFsBackend.Listen(device.SocketPath, new FuseServer(Served(mount)), _log, slowRequests: _hooks?.RunsUserCode ?? false);
                }
            }
            catch (IOException ex)
            {
                throw new SandboxStartException($"cannot serve {mount.Spec.HostPath ?? "(memory)"} for {mount.Spec.GuestPath}: {ex.Message}", ex);
            }

            mount.Device = device;
        }
    }

    /// <summary>A mount writes to the host (host_fs): what the guest has not sent yet must reach it before the VM stops.</summary>
    public bool AnyWritable => _mounts.Any(m => m.Spec.Type == VfsMountType.HostFs);

    /// <summary>
    /// Asks the guest to mount each one (<paramref name="open"/> opens the guest's mount stream for
    /// a mount, given its virtiofs tag or null for the relay) and, for the relay, starts serving
    /// it; returns once every mount answered "ok".
    /// </summary>
    /// <exception cref="SandboxStartException">The guest could not mount one (its reason).</exception>
    public async Task AttachAsync(Func<VfsMountRequest, CancellationToken, Task<MuxStream>> open, CancellationToken cancellationToken)
    {
        for (var i = 0; i < _mounts.Count; i++)
        {
            var mount = _mounts[i];
            var stream = await open(RequestFor(mount.Spec, i) with { VirtiofsTag = mount.Device?.Tag }, cancellationToken);
            mount.Stream = stream;

            // The relay is served from the start: a single file's bind looks the file up through the mount before "ok".
            if (mount.Device is null)
            {
                var server = new FuseServer(Served(mount));
                mount.Relay = Task.Run(() => ServeAsync(mount, stream, server), CancellationToken.None);
            }

            var status = await ReadStatusAsync(stream.GetReadStream(StreamChannel.Stderr), cancellationToken);
            if (status != "ok")
            {
                throw new SandboxStartException($"mounting {mount.Spec.HostPath ?? "(memory)"} at {mount.Spec.GuestPath} in the guest failed: {status}");
            }
        }
    }

    /// <summary>
    /// Ends every relay the way the guest expects before it powers off: end of stdin (the guest
    /// unmounts, which sends what its kernel still held), then its reply. Bounded; idempotent.
    /// </summary>
    public async Task CloseAsync()
    {
        foreach (var mount in _mounts)
        {
            if (mount.Stream is { } stream && !mount.Closing)
            {
                mount.Closing = true;
                try
                {
                    await stream.WriteEofAsync(StreamChannel.Stdin, CancellationToken.None);
                }
                catch (Exception ex) when (ex is IOException or InvalidOperationException or MuxConnectionClosedException or MuxStreamResetException)
                {
                    // The VM is already gone.
                }
            }
        }

        foreach (var mount in _mounts)
        {
            if (mount.Stream is { } stream)
            {
                await ((Task)stream.Reply).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            if (mount.Relay is { } relay)
            {
                await relay.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        foreach (var mount in _mounts)
        {
            if (mount.Stream is { } stream)
            {
                await stream.DisposeAsync();
            }

            // The guest has unmounted (CloseAsync): the back-end stops before its provider goes.
            if (mount.Backend is { } backend)
            {
                await backend.DisposeAsync();
            }

            if (mount.Virtiofsd is { } virtiofsd)
            {
                await virtiofsd.DisposeAsync();
            }

            mount.Provider?.Dispose();
            if (mount.Merged is { } merged)
            {
                Interop.HostMounts.Unmount(merged); // the upper layer stays with the VM directory
            }
        }
    }

    /// <summary>What the FUSE server answers from: the provider, behind the hooks when the sandbox has any.</summary>
    private IVfsProvider Served(Mounted mount)
    {
        var provider = mount.Provider ?? throw new InvalidOperationException($"the overlay for {mount.Spec.GuestPath} was not prepared");
        if (_hooks is null)
        {
            return provider;
        }

        // A single file is served from a hidden one-entry folder: rules and events name it where the guest sees it.
        return mount.Spec.IsFile
            ? new HookedProvider(provider, VfsMounts.HiddenMounts, _hooks, (Path.GetFileName(mount.Spec.HostPath!), mount.Spec.GuestPath))
            : new HookedProvider(provider, mount.Spec.GuestPath, _hooks);
    }

    private static IVfsProvider Open(VfsMountSpec spec)
    {
        try
        {
            if (spec.IsFile)
            {
                // The file's folder, with only the file in it (the folder stays out of the guest's reach).
                var folder = HostFsProvider.Open(Path.GetDirectoryName(spec.HostPath!)!, readOnly: spec.Type == VfsMountType.ReadOnly);
                return new SingleFileProvider(folder, Path.GetFileName(spec.HostPath!));
            }

            return spec.Type switch
            {
                VfsMountType.HostFs => HostFsProvider.Open(spec.HostPath!, readOnly: false),
                VfsMountType.ReadOnly => HostFsProvider.Open(spec.HostPath!, readOnly: true),
                VfsMountType.Memory => new MemoryProvider(),
                _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Type, "an overlay is prepared with the VM directory"),
            };
        }
        catch (IOException ex)
        {
            throw new SandboxStartException($"cannot open {spec.HostPath} to mount at {spec.GuestPath}: {ex.Message}", ex);
        }
    }

    private async Task ServeAsync(Mounted mount, MuxStream stream, FuseServer server)
    {
        try
        {
            await FuseRelayHost.ServeAsync(stream.GetReadStream(StreamChannel.Stdout), stream.GetWriteStream(StreamChannel.Stdin), server, _log, CancellationToken.None);
        }
        catch (Exception ex) when (ex is FuseFormatException or IOException or MuxConnectionClosedException or MuxStreamResetException)
        {
            VfsLog.RelayEnded(_log, mount.Spec.GuestPath, ex.Message);
            await stream.TryResetAsync("the VFS relay ended: " + ex.Message);
        }
    }

    /// <summary>The guest's one status line ("ok" or "error: …") on the stream's stderr, bounded.</summary>
    private static async Task<string> ReadStatusAsync(Stream stderr, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(MountTimeout);
        var line = new List<byte>();
        var one = new byte[1];
        try
        {
            while (line.Count < 4096 && await stderr.ReadAsync(one, deadline.Token) == 1 && one[0] != (byte)'\n')
            {
                line.Add(one[0]);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"no answer within {MountTimeout.TotalSeconds:0} s";
        }

        var text = System.Text.Encoding.UTF8.GetString(line.ToArray()).Trim();
        return text.Length == 0 ? "the guest closed the mount without a status" : text;
    }

    private sealed class Mounted(VfsMountSpec spec, IVfsProvider? provider)
    {
        public VfsMountSpec Spec { get; } = spec;

        public IVfsProvider? Provider { get; set; } = provider;

        /// <summary>An overlay's view on the host, unmounted at dispose.</summary>
        public string? Merged { get; set; }

        public MuxStream? Stream { get; set; }

        public Task? Relay { get; set; }

        /// <summary>The vhost-user device for this mount; null with the channel transport.</summary>
        public VmVirtiofsDevice? Device { get; set; }

        public VhostUserFsBackend? Backend { get; set; }

        /// <summary>Benchmarks only: Debian's virtiofsd serving the folder instead of <see cref="Backend"/>.</summary>
        public VirtiofsdProcess? Virtiofsd { get; set; }

        /// <summary>The host folder a virtiofsd would serve (host_fs only, the overlay's view; null for memory and ro).</summary>
        public string? HostFolder => Spec.Type switch
        {
            VfsMountType.HostFs => Spec.HostPath,
            VfsMountType.Overlay => Merged,
            _ => null,
        };

        public bool Closing { get; set; }
    }
}
