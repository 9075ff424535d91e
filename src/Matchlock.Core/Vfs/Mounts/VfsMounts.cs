using Matchlock.Core.Events;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Hooks;
using Matchlock.Core.Vfs.Fuse;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.Mounts;

/// <summary>
/// A sandbox's VFS mounts on the host (docs/VFS.md): one provider and one relay stream each. The
/// guest mounts and answers "ok" on the stream's stderr before any command runs; the host's
/// <see cref="FuseRelayHost"/> then serves the stream until the guest unmounts or the sandbox
/// stops. Disposing ends every relay (end of stdin: the guest unmounts) and releases the providers.
/// </summary>
internal sealed class VfsMounts : IAsyncDisposable
{
    /// <summary>How long the guest may take to mount one (loading the fuse module the first time).</summary>
    private static readonly TimeSpan MountTimeout = TimeSpan.FromSeconds(30);

    private readonly List<Mounted> _mounts = [];
    private readonly ILogger _log;
    private readonly VfsHookEngine? _hooks;

    private VfsMounts(ILogger log, VfsHookEngine? hooks = null)
    {
        _log = log;
        _hooks = hooks;
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

    /// <summary>A mount writes to the host (host_fs): what the guest has not sent yet must reach it before the VM stops.</summary>
    public bool AnyWritable => _mounts.Any(m => m.Spec.Type == VfsMountType.HostFs);

    /// <summary>
    /// Asks the guest to mount each one (<paramref name="open"/> opens the guest's relay stream for
    /// a mount) and starts serving it; returns once every mount answered "ok".
    /// </summary>
    /// <exception cref="SandboxStartException">The guest could not mount one (its reason).</exception>
    public async Task AttachAsync(Func<VfsMountRequest, CancellationToken, Task<MuxStream>> open, CancellationToken cancellationToken)
    {
        for (var i = 0; i < _mounts.Count; i++)
        {
            var mount = _mounts[i];
            var stream = await open(RequestFor(mount.Spec, i), cancellationToken);
            mount.Stream = stream;

            // Served from the start: a single file's bind looks the file up through the mount before "ok".
            var server = new FuseServer(Served(mount));
            mount.Relay = Task.Run(() => ServeAsync(mount, stream, server), CancellationToken.None);
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
        return _hooks is null ? provider : new HookedProvider(provider, mount.Spec.GuestPath, _hooks);
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

        public bool Closing { get; set; }
    }
}
