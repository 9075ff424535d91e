using System.Diagnostics;
using Matchlock.Core.Images;
using Matchlock.Core.Interop;
using Matchlock.Core.Kernel;
using Matchlock.Core.Network;
using Matchlock.Core.Network.Plumbing;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.State;
using Matchlock.Core.Events;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Fuse;
using Matchlock.Core.Vfs.Mounts;
using Matchlock.Core.Vm;
using Matchlock.Protocol;
using Matchlock.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// One microVM running an image, and the only owner of everything it holds: the VMM process,
/// the channel, the VM directory and its disks. Dispose it to stop the guest and release them.
/// </summary>
public sealed partial class Sandbox : IAsyncDisposable
{
    private readonly IVmInstance _vm;
    private readonly MuxConnection _connection;
    private readonly string _vmDir;
    private readonly GuestNic? _nic;
    private readonly AttachedDisks _disks;
    private readonly VfsMounts _vfs;
    private SandboxStateRecorder? _state; // set once by CreateAsync; this sandbox's record in state.db
    private int _disposed;
    private readonly Microsoft.Extensions.Logging.ILogger _log;
    private readonly TimeProvider _time;

    private Sandbox(
        string id, string vmDir, SandboxSpec spec, ImageRecord image, IVmInstance vm, MuxConnection connection, GuestHello hello, string? accelNotice,
        GuestNic? nic, AttachedDisks disks, VfsMounts vfs, SandboxEventLog events, SandboxEnvironment env)
    {
        _vfs = vfs;
        Events = events;
        Logging = env.Logging;
        _time = env.Time;
        _log = Logging.CreateLogger(SandboxLog.Category);
        _nic = nic;
        _disks = disks;
        Id = id;
        _vmDir = vmDir;
        Spec = spec;
        Image = image;
        _vm = vm;
        _connection = connection;
        Hello = hello;
        AccelNotice = accelNotice;
    }

    public string Id { get; }

    /// <summary>The clock this sandbox's records, events and waits use (<see cref="SandboxEnvironment.Time"/>).</summary>
    internal TimeProvider Time => _time;

    /// <summary>Where this sandbox and its owner log (<see cref="SandboxEnvironment.Logging"/>).</summary>
    internal Microsoft.Extensions.Logging.ILoggerFactory Logging { get; }

    public SandboxSpec Spec { get; }

    public ImageRecord Image { get; }

    public GuestHello Hello { get; }

    /// <summary>Set when <c>auto</c> acceleration fell back to TCG: the CLI prints it once.</summary>
    public string? AccelNotice { get; }

    public BootTimings Timings { get; private set; } = new();

    /// <summary>The VM directory (<c>vm.log</c>, disks); gone after dispose with <see cref="SandboxSpec.RemoveOnDispose"/>.</summary>
    public string Directory => _vmDir;

    public int VmmPid => _vm.Pid;

    /// <summary>
    /// Everything this sandbox reports (docs/NETWORK.md, docs/VFS.md): the sealed network's decisions
    /// and, with <see cref="SandboxSpec.VfsInterception"/>, file operations; also in <c>events.jsonl</c>.
    /// </summary>
    public SandboxEventLog Events { get; }

    /// <summary>The sealed network (policy, events, secrets); null with <see cref="SandboxSpec.NoNetwork"/>.</summary>
    public SealedNetwork? Network => _nic?.Sealed;

    /// <summary>Boots a sandbox and waits until its guest serves requests.</summary>
    /// <exception cref="ImageNotFoundException">The image is not in the local store.</exception>
    /// <exception cref="SandboxStartException">The VM could not start or never became ready; nothing is left behind.</exception>
    /// <remarks>
    /// The steps, in order: check the spec; sweep what dead owners left; take the <c>--disk</c>
    /// volumes (the user's to fix, so before anything is made); find the image, kernel, initramfs
    /// and accelerator; then make the VM directory and its state record, the sealed network, the
    /// writable disk, the VMM, the channel to the guest, and configure the guest. Everything made
    /// is held in one <see cref="SandboxResources"/> as it is made; a failure releases it in the
    /// same order a stop does.
    /// </remarks>
    public static async Task<Sandbox> CreateAsync(SandboxSpec spec, SandboxEnvironment? environment = null, CancellationToken cancellationToken = default)
    {
        spec.Validate();
        var env = environment ?? SandboxEnvironment.CreateDefault();
        var clock = Stopwatch.StartNew();
        await VmReconciler.SweepOrphansAsync(env.VmsDir, env.StatePath, cancellationToken);
        var disks = spec.Disks.Count == 0 ? AttachedDisks.None : AttachedDisks.Acquire(spec.Disks, env.VolumesDir);
        var (image, boot, accel) = await PrepareBootAsync(spec, env, disks, cancellationToken);
        var id = VmId.New();
        var vmDir = Path.Combine(env.VmsDir, id);

        // The sandbox's one event log (network decisions, file operations); its file appears with the first event.
        var events = new SandboxEventLog(Path.Combine(vmDir, "events.jsonl"));
        VfsMounts vfs;
        try
        {
            // Host folders are opened before anything is made: a folder that cannot be is the user's to fix.
            vfs = spec.Mounts.Count == 0
                ? VfsMounts.None
                : VfsMounts.Prepare(spec.Mounts, spec.VfsInterception, events, env.Time, env.Logging.CreateLogger(VfsLog.Category));
        }
        catch
        {
            disks.Dispose();
            await events.DisposeAsync();
            throw;
        }

        var held = new SandboxResources(vmDir) { Disks = disks, Vfs = vfs, Events = events };
        SandboxStateRecorder? state = null;
        try
        {
            state = CreateDirectoryAndRecord(env, spec, id, held.VmDir, disks);
            vfs.PrepareOverlays(held.VmDir);
            await vfs.ListenAsync(held.VmDir, cancellationToken);
            held.Nic = await CreateNetworkAsync(env, spec, id, events, cancellationToken);
            var upper = Path.Combine(held.VmDir, "upper.ext4");
            await UpperDisk.CreateAsync(upper, spec.DiskSizeMb, cancellationToken);
            var hostSetup = clock.Elapsed;

            held.Vm = await env.Backend.StartAsync(DescribeVm(env, spec, id, held.VmDir, boot, accel, image, upper, disks, held.Nic) with { VirtiofsDevices = vfs.Devices }, cancellationToken);
            state?.AddResource(VmResourceKind.QemuPid, held.Vm.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var vmmStarted = clock.Elapsed;

            held.Connection = new MuxConnection(held.Vm.Channel, isHost: true);
            held.Connection.Start();
            var hello = await WaitForHelloAsync(held.Connection, held.Vm, spec.BootTimeout, cancellationToken);
            var helloAt = clock.Elapsed;

            var sandbox = new Sandbox(id, held.VmDir, spec, image, held.Vm, held.Connection, hello, accel.Notice, held.Nic, disks, vfs, events, env);
            await sandbox.ConfigureAsync(cancellationToken);
            await vfs.AttachAsync(async (request, ct) => await sandbox.OpenAsync(request, ct), cancellationToken);
            sandbox.Timings = BootTimings.From(hello, hostSetup, vmmStarted, helloAt, clock.Elapsed);
            if (spec.RemoveOnDispose)
            {
                // QEMU holds the disk open; unlinking now means even a SIGKILLed owner leaves no disk behind.
                File.Delete(upper);
            }

            state?.Running();
            sandbox._state = state;
            SandboxLog.Running(sandbox._log, id, spec.Image, held.Vm.Pid, (long)clock.Elapsed.TotalMilliseconds);
            return sandbox;
        }
        catch (Exception ex)
        {
            if (await AbandonStartAsync(ex, env, id, held, state) is { } better)
            {
                throw better;
            }

            throw;
        }
    }

    /// <summary>
    /// What the VM boots from: the image, the kernel with its cached initramfs, and the
    /// accelerator. Nothing is made yet; the <c>--disk</c> locks are released if this fails.
    /// </summary>
    private static async Task<(ImageRecord Image, BootArtifacts Boot, AccelChoice Accel)> PrepareBootAsync(
        SandboxSpec spec, SandboxEnvironment env, AttachedDisks disks, CancellationToken cancellationToken)
    {
        try
        {
            var image = env.Images.Resolve(spec.Image);
            var kernel = env.Kernels.Find();
            var boot = await new InitramfsBuilder(kernel, env.CacheDir).GetOrBuildAsync(env.GuestBinaryPath(), cancellationToken);
            var accel = await new AccelSelector(kernel.KernelPath, env.CacheDir).SelectAsync(spec.Accel, cancellationToken);
            return (image, boot, accel);
        }
        catch
        {
            disks.Dispose();
            throw;
        }
    }

    /// <summary>The VM directory (0700) with its owner file, and the state record listing what will be made.</summary>
    private static SandboxStateRecorder? CreateDirectoryAndRecord(SandboxEnvironment env, SandboxSpec spec, string id, string vmDir, AttachedDisks disks)
    {
        System.IO.Directory.CreateDirectory(env.VmsDir);
        System.IO.Directory.CreateDirectory(vmDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        OwnerRecord.Write(vmDir, spec.RemoveOnDispose);
        return RegisterState(env, spec, id, vmDir, disks);
    }

    /// <summary>The sealed network (or, for plumbing tests, the bare namespace); null with <c>--no-network</c>.</summary>
    private static async Task<GuestNic?> CreateNetworkAsync(SandboxEnvironment env, SandboxSpec spec, string id, SandboxEventLog events, CancellationToken cancellationToken)
    {
        if (env.PlumbingOnly is { } makeNetwork)
        {
            return new GuestNic(await makeNetwork(id, cancellationToken), null);
        }

        if (spec.NoNetwork)
        {
            return null;
        }

        var sealedNetwork = await SealedNetwork.CreateAsync(id, spec.Network, events, cancellationToken, env.Time);
        return new GuestNic(sealedNetwork.Plumbing, sealedNetwork);
    }

    /// <summary>
    /// A start failed after the VM directory existed: records why, releases what was made (in the
    /// order a stop uses) and returns the error to throw instead of <paramref name="ex"/> (with
    /// the guest console's last lines), or null to rethrow it as it is.
    /// </summary>
    private static async Task<Exception?> AbandonStartAsync(Exception ex, SandboxEnvironment env, string id, SandboxResources held, SandboxStateRecorder? state)
    {
        var log = env.Logging.CreateLogger(SandboxLog.Category);
        SandboxLog.StartFailed(log, id, ex);
        state?.Failed(ex is OperationCanceledException ? "cancelled" : ex.Message);
        var consoleTail = held.Vm?.ReadConsoleTail(30);
        // The start's own error is the one to report; release failures are logged.
        _ = await held.ReleaseAsync(deleteDirectory: true, log, id);
        state?.ForgetIfReleased(held.VmDir);
        state?.Dispose();
        return ex is SandboxStartException and not ImageNotFoundException && consoleTail is { Length: > 0 }
            ? new SandboxStartException($"{ex.Message}\n--- last lines of the guest console ---\n{consoleTail.TrimEnd()}", ex.InnerException)
            : null;
    }

    /// <summary>
    /// The state record (docs/ARCHITECTURE.md D9): registered before anything is acquired, each
    /// resource recorded before it exists, so a crashed owner's leftovers can always be found.
    /// </summary>
    private static SandboxStateRecorder? RegisterState(SandboxEnvironment env, SandboxSpec spec, string id, string vmDir, AttachedDisks disks)
    {
        var state = SandboxStateRecorder.Register(env.StatePath, new VmRegistration(
            id, spec.Image, env.Time.GetUtcNow(), Environment.ProcessId, OwnerNative.ProcessStartTime(Environment.ProcessId) ?? "",
            spec.Hostname ?? id, (int)Math.Ceiling(spec.Cpus), spec.MemoryMb, vmDir));
        if (env.PlumbingOnly is not null || !spec.NoNetwork)
        {
            state?.AddResource(VmResourceKind.Netns, NetworkNamespace.NamePrefix + id);
        }

        state?.AddResource(VmResourceKind.Disk, Path.Combine(vmDir, "upper.ext4"));
        state?.AddResource(VmResourceKind.Socket, Path.Combine(vmDir, "chan.sock"));
        state?.AddResource(VmResourceKind.Socket, Path.Combine(vmDir, "qmp.sock"));
        foreach (var listener in spec.Listeners)
        {
            state?.AddResource(VmResourceKind.Listener, listener);
        }

        foreach (var mount in spec.Mounts)
        {
            var type = mount.Type switch
            {
                VfsMountType.HostFs => "host_fs",
                VfsMountType.ReadOnly => "ro",
                VfsMountType.Memory => "memory",
                _ => "overlay",
            };
            state?.AddResource(VmResourceKind.VfsMount, $"{mount.HostPath ?? "(memory)"} -> {mount.GuestPath} ({type})");
        }

        foreach (var disk in disks.HostPaths)
        {
            state?.AddResource(VmResourceKind.AttachedDisk, disk);
        }

        return state;
    }

    /// <summary>What the VMM is asked to run: kernel, initramfs, the image and the writable disk, attached disks, channel, console and NIC.</summary>
    private static VmSpec DescribeVm(
        SandboxEnvironment env, SandboxSpec spec, string id, string vmDir, BootArtifacts boot, AccelChoice accel, ImageRecord image, string upper, AttachedDisks disks, GuestNic? nic) =>
        new VmSpec(
            id,
            boot.KernelPath,
            boot.InitramfsPath,
            // A debugging aid (e.g. "loglevel=7"); the command line is readable in the guest, so never secrets.
            ExtraKernelCmdline: env.ExtraKernelArgs,
            Cpus: (int)Math.Ceiling(spec.Cpus),
            spec.MemoryMb,
            [new VmDisk(image.RootfsPath, "mlroot", ReadOnly: true), new VmDisk(upper, "mlupper", ReadOnly: false), .. disks.VmDisks],
            ChannelSocketPath: Path.Combine(vmDir, "chan.sock"),
            ConsoleLogPath: Path.Combine(vmDir, "vm.log"),
            QmpSocketPath: Path.Combine(vmDir, "qmp.sock"),
            vmDir,
            accel.Accel)
        {
            Network = nic?.Namespace.Attachment,
        };

    private static async Task<GuestHello> WaitForHelloAsync(MuxConnection connection, IVmInstance vm, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var hello = connection.WaitForHelloAsync(timeoutSource.Token);
        var exited = vm.Exited;
        try
        {
            var first = await Task.WhenAny(hello, exited);
            if (first == exited)
            {
                throw new SandboxStartException($"the VM exited (status {await exited}) before the guest became ready");
            }

            return ProtocolSerializer.ReadHello(await hello);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new SandboxStartException($"the guest did not become ready within {timeout.TotalSeconds:0} s");
        }
        catch (MuxConnectionClosedException ex)
        {
            throw new SandboxStartException("the VM closed its channel before the guest became ready: " + ex.Message, ex);
        }
        catch (MuxProtocolException ex)
        {
            throw new SandboxStartException("the guest sent something that is not our protocol (is the guest binary from this build?): " + ex.Message, ex);
        }
    }

    private async Task ConfigureAsync(CancellationToken cancellationToken)
    {
        var request = new ConfigureRequest
        {
            Hostname = Spec.Hostname ?? Id,
            UnixTimeMs = _time.GetUtcNow().ToUnixTimeMilliseconds(),
            CpuMax = Spec.CpuMax(),
            PidsLimit = Spec.PidsLimit,
            Network = _nic?.Namespace.GuestConfiguration,
            DnsServers = _nic is null ? [] : [_nic.Namespace.Options.Gateway.ToString()],
            // The addresses the sandbox DNS gives too (a loopback mapping appears as its guest stand-in).
            Hosts = Network is null
                ? []
                : [.. Spec.Network.AddHosts.Select(kv => HostName.Parse(kv.Key)).Distinct()
                    .SelectMany(h => Network.Policy.StaticAddresses(h).Select(a => new HostEntry(h.Value, a.ToString())))],
            CaCertificatePem = Network?.CaCertificatePem,
            Disks = _disks.GuestMounts,
        };
        try
        {
            await RequestAsync(request, cancellationToken);
        }
        catch (GuestOperationException ex)
        {
            // A failed --disk mount is the common case: say which of the user's disks it was.
            throw new SandboxStartException($"setting up the guest failed: {_disks.Describe(ex.Message)}", ex);
        }
    }

    /// <summary>
    /// How long a request without data channels (configure, list_files, shutdown) may wait for
    /// its reply. They take milliseconds; a guest that needs longer is hung or starved, and the
    /// caller gets an error instead of a wait without end. Configure mounts the --disk volumes,
    /// hence not less.
    /// </summary>
    internal static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Sends one request that carries no data channels and returns its reply (within <see cref="RequestTimeout"/>).</summary>
    internal async Task<GuestReply> RequestAsync(GuestRequest request, CancellationToken cancellationToken)
    {
        await using var stream = await OpenAsync(request, cancellationToken);
        var what = request switch
        {
            ConfigureRequest => "configure",
            ShutdownRequest => "shutdown",
            ListFilesRequest => "list_files",
            _ => request.GetType().Name,
        };
        var reply = await GuestReplies.WaitAsync(stream, what, RequestTimeout, cancellationToken);
        return reply.Ok ? reply : throw new GuestOperationException(reply.Error ?? "the guest refused the request", reply.ErrorCode);
    }

    private async Task<MuxStream> OpenAsync(GuestRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await _connection.OpenAsync(ProtocolSerializer.Serialize(request), cancellationToken);
        }
        catch (MuxConnectionClosedException ex)
        {
            throw new SandboxGoneException($"sandbox {Id} is not running any more: {ex.Message}", ex);
        }
    }
}
