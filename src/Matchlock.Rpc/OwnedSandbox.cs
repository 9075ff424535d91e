using Matchlock.Core.Events;
using System.Net;
using Matchlock.Core;
using Matchlock.Core.Images;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Owner;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol.Messages;

namespace Matchlock.Rpc;

/// <summary>
/// The sandbox of an rpc process, which is its owner: recorded in state with its control socket
/// (so <c>matchlock ls/exec/allow-list/port-forward/kill</c> work on it), stopped by <c>close</c>,
/// and, if this process dies without closing, left for <c>matchlock rm</c> to release.
/// </summary>
internal sealed class OwnedSandbox : IRpcSandbox
{
    /// <summary>The time a closing sandbox's processes get between SIGTERM and the power-off.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(1);

    private readonly SandboxOwner _owner;
    private readonly ImageConfig _image;
    private readonly IReadOnlyList<string> _env;
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new(); // guards _close
    private Task? _close;

    private OwnedSandbox(SandboxOwner owner, ImageConfig image, IReadOnlyList<string> env)
    {
        _owner = owner;
        _image = image;
        _env = env;
        Stopped = WatchAsync();
    }

    private Sandbox Sandbox => _owner.Sandbox;

    public string Id => Sandbox.Id;

    public Task<string> Stopped { get; }

    public SandboxEventLog? Events => Sandbox.Events;

    public string LogPath => Path.Combine(Sandbox.Directory, "command.log");

    public static async Task<OwnedSandbox> StartAsync(CreateConfig config, ImageRecord image, RpcEnvironment environment, CancellationToken cancellationToken)
    {
        var spec = config.Spec with { BootTimeout = environment.BootTimeout ?? config.Spec.BootTimeout };
        var sandbox = await Sandbox.CreateAsync(spec, environment.Sandboxes, cancellationToken);
        SandboxOwner owner;
        try
        {
            owner = SandboxOwner.Start(sandbox, StopGrace, staysAfterStop: true);
        }
        catch
        {
            await sandbox.DisposeAsync();
            throw;
        }

        var owned = new OwnedSandbox(owner, config.ImageConfig.Apply(image.Config), config.Env);
        try
        {
            if (config.LaunchEntrypoint)
            {
                await owned.LaunchEntrypointAsync(cancellationToken);
            }

            return owned;
        }
        catch
        {
            await owned.CloseAsync(TimeSpan.FromSeconds(2));
            await owned.DisposeAsync();
            throw;
        }
    }

    public Task<IExecSession> StartExecAsync(ExecSpec spec, CancellationToken cancellationToken) =>
        StartAsync(spec with { Env = [.. _env, .. spec.Env] }, cancellationToken);

    public Task WriteFileAsync(string path, Stream content, int mode, CancellationToken cancellationToken) =>
        Sandbox.WriteFileAsync(path, content, mode, cancellationToken);

    public Task ReadFileAsync(string path, Stream destination, CancellationToken cancellationToken) =>
        Sandbox.ReadFileAsync(path, destination, cancellationToken);

    public Task<IReadOnlyList<FileEntry>> ListFilesAsync(string path, CancellationToken cancellationToken) =>
        Sandbox.ListFilesAsync(path, cancellationToken);

    public IReadOnlyList<string> ChangeAllowList(IReadOnlyList<string> hosts, bool add)
    {
        var network = Sandbox.Network ?? throw new RpcException(RpcErrorCodes.VmFailed, "this sandbox has no network (no_network): there is no allow-list to change");
        try
        {
            return add ? network.Policy.Allow(hosts) : network.Policy.Disallow(hosts);
        }
        catch (FormatException ex)
        {
            throw RpcException.InvalidParams("params.hosts: " + ex.Message);
        }
    }

    public PortForwarder ForwardPorts(IReadOnlyList<PortMapping> mappings, IReadOnlyList<IPAddress>? addresses) =>
        Sandbox.ForwardPorts(mappings, addresses, _ => { });

    /// <summary>Stops and releases the sandbox once; a second caller waits for the first.</summary>
    public Task CloseAsync(TimeSpan grace)
    {
        lock (_gate)
        {
            return _close ??= CloseOnceAsync();
        }

        async Task CloseOnceAsync()
        {
            await _closing.CancelAsync();
            await _owner.DisposeAsync(); // the guest stops (StopGrace), the VM and its network are released, the record says stopped
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync(StopGrace);
        _closing.Dispose();
    }

    private async Task<IExecSession> StartAsync(ExecSpec spec, CancellationToken cancellationToken) =>
        await Sandbox.StartExecAsync(spec.OverImage(_image, _ => null), cancellationToken);

    /// <summary>
    /// Completes when the sandbox stops without <c>close</c> (<c>matchlock kill</c>, or the VM's own
    /// exit), once it is released; or when <c>close</c> begins.
    /// </summary>
    private async Task<string> WatchAsync()
    {
        var reason = await _owner.WaitAsync(_closing.Token);
        if (reason != SandboxOwner.StopReason.Signalled)
        {
            await CloseAsync(StopGrace); // release now: the rpc process goes on, answering that the sandbox is gone
        }

        return reason switch
        {
            SandboxOwner.StopReason.Killed => "stopped by matchlock kill",
            SandboxOwner.StopReason.VmExited => "its VM exited",
            _ => "closed",
        };
    }

    /// <summary>
    /// Starts the image's ENTRYPOINT + CMD in the background, its output to the sandbox's log; a
    /// command that fails within 500 ms fails <c>create</c> with its output.
    /// </summary>
    private async Task LaunchEntrypointAsync(CancellationToken cancellationToken)
    {
        var argv = CommandComposer.Compose(_image, null, []);
        if (argv.Count == 0)
        {
            return; // the image names no command
        }

        var spec = new ExecSpec { Argv = argv, Env = _env, CreateWorkingDir = true };
        var session = await StartAsync(spec, cancellationToken);
        var log = new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
        var run = Task.Run(async () =>
        {
            await using (session)
            await using (log)
            {
                var copies = Task.WhenAll(CopyAsync(session.Stdout, log), CopyAsync(session.Stderr, log));
                var result = await session.WaitAsync(CancellationToken.None);
                await copies;
                return result;
            }
        }, CancellationToken.None);

        var first = await Task.WhenAny(run, Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken));
        if (first == run && run.Result.ExitCode != 0)
        {
            var tail = File.ReadAllText(LogPath);
            throw new RpcException(RpcErrorCodes.VmFailed,
                $"the image's entrypoint ({string.Join(' ', argv)}) exited with status {run.Result.ExitCode} within 500 ms (launch_entrypoint): {(tail.Length > 2000 ? tail[^2000..] : tail).Trim()}");
        }
    }

    private static readonly Lock LogGate = new();

    private static async Task CopyAsync(Stream from, FileStream to)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await from.ReadAsync(buffer)) > 0)
        {
            lock (LogGate)
            {
                to.Write(buffer, 0, n); // stdout and stderr interleaved as they come
                to.Flush();
            }
        }
    }
}

/// <summary>Creates <see cref="OwnedSandbox"/>es: reads the config, gets the image, boots.</summary>
internal sealed class OwnedSandboxFactory(RpcEnvironment environment) : IRpcSandboxFactory
{
    public async Task<IRpcSandbox> CreateAsync(RpcParams config, CancellationToken cancellationToken)
    {
        var create = CreateConfig.Read(config);
        var image = await environment.EnsureImage(create.Spec.Image, cancellationToken);
        var callbacks = create.CallbackSocket is { } socket ? new HookCallbackClient(socket) : null;
        var spec = callbacks is null ? create.Spec : create.Spec with
        {
            Network = create.Spec.Network with
            {
                Hooks = [.. create.Spec.Network.Hooks.Select(h => h.CallbackId is null ? h : h with { Callback = callbacks })],
            },
        };
        if (callbacks is null && spec.Network.Hooks.FirstOrDefault(h => h.CallbackId is not null) is { } orphan)
        {
            throw RpcException.InvalidParams($"network.interception: rule {orphan.CallbackId} has a callback_id but no callback_socket was given");
        }

        return await OwnedSandbox.StartAsync(create with { Spec = spec }, image, environment, cancellationToken);
    }
}
