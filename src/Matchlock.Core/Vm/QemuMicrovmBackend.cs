using System.Net.Sockets;

namespace Matchlock.Core.Vm;

/// <summary>
/// Runs VMs as <c>qemu-system-x86_64 -M microvm</c> (docs/ARCHITECTURE.md D1): no PCI, no firmware, virtio-mmio
/// devices, the kernel booted directly.
/// </summary>
/// <remarks>
/// Start steps: validate the spec; listen on the channel socket (0600) before QEMU exists, so
/// QEMU's <c>server=off</c> connect cannot race us (docs/PLATFORM.md "virtio-serial channel"); spawn QEMU (stdin /dev/null,
/// output to <c>WorkDir/qemu.err</c>, parent-death SIGKILL, pid in <c>WorkDir/qemu.pid</c>);
/// accept its connection and complete a QMP handshake (proof that QEMU finished initializing),
/// bounded by <see cref="ConnectTimeout"/> and QEMU's early exit.
/// </remarks>
public sealed class QemuMicrovmBackend : IVmBackend
{
    private readonly string _qemu;
    private readonly Func<long> _hostTscKhz;

    /// <param name="qemuBinary">Program name or path; default <c>qemu-system-x86_64</c> from PATH.</param>
    /// <param name="connectTimeout">How long QEMU may take to connect to the channel (measured ~30 ms; default 15 s for loaded hosts).</param>
    public QemuMicrovmBackend(string qemuBinary = "qemu-system-x86_64", TimeSpan? connectTimeout = null)
        : this(qemuBinary, connectTimeout, () => HostTsc.Khz)
    {
    }

    internal QemuMicrovmBackend(string qemuBinary, TimeSpan? connectTimeout, Func<long> hostTscKhz)
    {
        ArgumentException.ThrowIfNullOrEmpty(qemuBinary);
        _qemu = qemuBinary;
        ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(15);
        _hostTscKhz = hostTscKhz;
    }

    public TimeSpan ConnectTimeout { get; }

    /// <summary>True when the QEMU binary can be found (tests and <c>doctor</c> use it).</summary>
    public bool IsAvailable => ChildProcess.FindOnPath(_qemu) is not null;

    /// <summary>The exact argument list QEMU would get for <paramref name="spec"/> (for diagnostics and benchmarks).</summary>
    public IReadOnlyList<string> GetArguments(VmSpec spec)
    {
        QemuCommandLine.Validate(spec);
        return QemuCommandLine.Build(spec, spec.Accel == VmAccel.Tcg ? _hostTscKhz() : 0);
    }

    public async Task<IVmInstance> StartAsync(VmSpec spec, CancellationToken cancellationToken)
    {
        var args = GetArguments(spec);
        var qemu = ChildProcess.FindOnPath(_qemu)
            ?? throw new VmStartException($"{_qemu} not found; install qemu-system-x86 (./setup.sh)");
        foreach (var (path, what) in new[] { (spec.KernelPath, "kernel"), (spec.InitrdPath, "initramfs") }
            .Concat(spec.Disks.Select(d => (d.Path, $"disk '{d.Serial}'"))))
        {
            if (!File.Exists(path))
            {
                throw new VmStartException($"{what} {path} does not exist");
            }
        }

        var errPath = Path.Combine(spec.WorkDir, "qemu.err");
        var pidPath = Path.Combine(spec.WorkDir, "qemu.pid");
        DeleteStaleSocket(spec.ChannelSocketPath);
        DeleteStaleSocket(spec.QmpSocketPath);

        var listener = Listen(spec.ChannelSocketPath);
        ChildProcess? child = null;
        try
        {
            child = await ChildProcess.StartAsync(qemu, args, errPath, cancellationToken, spec.Network?.NamespaceName);
            await File.WriteAllTextAsync(pidPath, $"{child.Pid}\n", cancellationToken);
            var channel = await AcceptAsync(listener, child, spec, errPath, cancellationToken);
            var instance = new QemuVmInstance(child, new NetworkStream(channel, ownsSocket: true), spec, pidPath);
            child = null; // ownership moved to the instance
            return instance;
        }
        finally
        {
            // Also unlinks the socket path (.NET does for bound UNIX sockets): QEMU has
            // connected and never reconnects, so nothing else may connect to it.
            listener.Dispose();
            if (child is not null)
            {
                // Not handed over: the start failed or was cancelled. Leave nothing behind.
                child.Kill();
                await child.Exited;
                child.Dispose();
                QemuVmInstance.DeleteFiles(spec, pidPath);
            }
        }
    }

    /// <summary>
    /// Accepts QEMU's channel connection, then waits for QMP to answer (QEMU fully initialized),
    /// all bounded by <see cref="ConnectTimeout"/> and raced against QEMU exiting.
    /// </summary>
    private async Task<Socket> AcceptAsync(Socket listener, ChildProcess child, VmSpec spec, string errPath, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ready = AcceptAndHandshakeAsync(listener, spec.QmpSocketPath, linked.Token);
        var timeout = Task.Delay(ConnectTimeout, linked.Token);
        var first = await Task.WhenAny(ready, child.Exited, timeout);
        if (first == ready && ready.IsCompletedSuccessfully)
        {
            return await ready;
        }

        await linked.CancelAsync();
        Exception? handshakeError = null;
        try
        {
            (await ready).Dispose(); // completed just as we gave up
        }
        catch (OperationCanceledException)
        {
            // We cancelled it.
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            // Usually QMP reset by a QEMU that is exiting; its exit code and qemu.err explain it.
            handshakeError = ex;
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (first == timeout)
        {
            throw new VmStartException(Describe($"QEMU did not become ready within {ConnectTimeout.TotalSeconds:0.#} s", spec, errPath));
        }

        // Wait for the exit so qemu.err is complete; a QEMU that stays up after a failed
        // handshake is reported as such (the caller's finally kills it).
        int code;
        try
        {
            code = await child.Exited.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
        }
        catch (TimeoutException)
        {
            throw new VmStartException(Describe($"QMP handshake with QEMU failed: {handshakeError?.Message}", spec, errPath), handshakeError!);
        }

        throw new VmStartException(Describe($"QEMU exited with code {code} during start", spec, errPath));
    }

    private static async Task<Socket> AcceptAndHandshakeAsync(Socket listener, string qmpPath, CancellationToken cancellationToken)
    {
        var channel = await listener.AcceptAsync(cancellationToken);
        try
        {
            await QmpReadiness.WaitAsync(qmpPath, cancellationToken);
            return channel;
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    internal static string Describe(string what, VmSpec spec, string errPath)
    {
        var err = TextTail.Read(errPath, 20);
        var console = TextTail.Read(spec.ConsoleLogPath, 20);
        return $"{what} (vm {spec.Id})."
            + (err.Length > 0 ? $"\nqemu: {err}" : "")
            + (console.Length > 0 ? $"\nconsole (last lines):\n{console}" : "");
    }

    private static Socket Listen(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            // Owner-only before listen(): nobody can connect between bind and chmod, because
            // connect() needs a listening socket.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(1);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void DeleteStaleSocket(string path)
    {
        // A previous owner of this VM directory crashed and left its socket: bind would fail.
        var info = new FileInfo(path);
        if (info.Exists || info.LinkTarget is not null)
        {
            if ((info.Attributes & FileAttributes.Directory) != 0)
            {
                throw new VmStartException($"{path} is a directory, expected a socket path");
            }

            info.Delete();
        }
    }
}
