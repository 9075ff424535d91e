using System.Text.Json;
using System.Threading.Channels;
using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

/// <summary>
/// A running sandbox: one microVM held by one <c>matchlock rpc</c> server. Every method is safe to
/// call concurrently. Dispose it (<c>await using</c>) to close it; <see cref="RemoveAsync"/>
/// also deletes its state.
/// </summary>
public sealed partial class Sandbox : IAsyncDisposable
{
    private readonly RpcConnection _rpc;
    private readonly MatchlockClientOptions _client;
    private readonly NetworkHookServer? _hooks;
    private readonly VfsLocalHooks? _vfsHooks;
    private readonly Lock _watchersGate = new(); // guards _watchers and _closed
    private readonly List<ChannelWriter<SandboxEvent>> _watchers = [];
    private readonly SemaphoreSlim _closeLock = new(1, 1); // one close at a time; later ones find it done
    private bool _closed;
    private bool _removed;

    private Sandbox(string id, RpcConnection rpc, MatchlockClientOptions client, NetworkHookServer? hooks, VfsLocalHooks? vfsHooks)
    {
        Id = id;
        _rpc = rpc;
        _client = client;
        _hooks = hooks;
        _vfsHooks = vfsHooks;
        _rpc.OnEvent = OnEvent;
    }

    /// <summary>The sandbox's id (<c>vm-</c> + 8 hex digits), as <c>matchlock ls</c> shows it.</summary>
    public string Id { get; }

    internal static async Task<Sandbox> CreateAsync(SandboxOptions options, MatchlockClientOptions client, bool launchEntrypoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(client);
        Wire.Validate(options);
        cancellationToken.ThrowIfCancellationRequested();

        var callbacks = Wire.CallbackRules(options);
        var hooks = callbacks.Count > 0 ? NetworkHookServer.Start(callbacks) : null;
        RpcConnection? rpc = null;
        try
        {
            var transport = client.Transport ?? MatchlockTransport.ChildProcess.Instance;
            rpc = new RpcConnection(transport.Open(client), onEvent: null);
            var result = await rpc.CallAsync("create", w => Wire.WriteCreate(w, options, launchEntrypoint, hooks?.SocketPath), cancellationToken);
            var id = Wire.Required(result, "create", "id").GetString() ?? "";
            var sandbox = new Sandbox(id, rpc, client, hooks, VfsLocalHooks.Compile(options.VfsInterception));
            if (options.PortForwards.Count > 0)
            {
                try
                {
                    await sandbox.PortForwardAsync(options.PortForwards, options.PortForwardAddresses, cancellationToken);
                }
                catch
                {
                    await sandbox.DisposeAsync();
                    throw;
                }
            }

            return sandbox;
        }
        catch when (rpc is not null || hooks is not null)
        {
            // The server (if it got that far) holds a half-made sandbox: end it, then our socket.
            if (rpc is not null)
            {
                // Ending its input lets it stop the VM cleanly; the dispose kills what is left.
                await rpc.Channel.CloseInputAsync();
                await Task.WhenAny(rpc.Channel.Exited, Task.Delay(client.CloseTimeout, CancellationToken.None));
                await rpc.DisposeAsync();
            }

            if (hooks is not null)
            {
                await hooks.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>
    /// Closes the sandbox: sends <c>close</c> with <paramref name="timeout"/> (default
    /// <see cref="MatchlockClientOptions.CloseTimeout"/>), waits that long plus a second for the
    /// answer, ends the server's input, and kills the server if it has not ended after another
    /// <paramref name="timeout"/>. Safe to call more than once.
    /// </summary>
    public async Task CloseAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var wait = timeout ?? _client.CloseTimeout;
        await _closeLock.WaitAsync(cancellationToken);
        try
        {
            lock (_watchersGate)
            {
                if (_closed)
                {
                    return;
                }

                _closed = true;
            }

            await CloseServerAsync(wait, cancellationToken);
        }
        finally
        {
            CompleteWatchers();
            if (_hooks is not null)
            {
                await _hooks.DisposeAsync();
            }

            _closeLock.Release();
        }
    }

    /// <summary>Closes the sandbox (if needed) and runs <c>matchlock rm &lt;id&gt;</c> to delete its state.</summary>
    public async Task RemoveAsync(CancellationToken cancellationToken = default)
    {
        await CloseAsync(cancellationToken: cancellationToken);
        if (!_removed)
        {
            await MatchlockClient.RemoveSandboxAsync(Id, _client, cancellationToken);
            _removed = true;
        }
    }

    /// <summary>Closes the sandbox; also removes it when <see cref="MatchlockClientOptions.RemoveOnDispose"/> is set.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_client.RemoveOnDispose)
        {
            await RemoveAsync();
        }
        else
        {
            await CloseAsync();
        }
    }

    private async Task CloseServerAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        var channel = _rpc.Channel;
        try
        {
            var close = await _rpc.StartAsync("close", w => w.WriteNumber("timeout_seconds", wait.TotalSeconds), null, cancellationToken);

            // Not WaitAsync(call, token): a close that timed out is followed by the kill, not by a cancel.
            await close.Result.WaitAsync(wait + TimeSpan.FromSeconds(1), cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or MatchlockRpcException)
        {
            // No (good) answer in time, or the server is already gone: end it below either way.
        }
        catch (OperationCanceledException)
        {
            await channel.KillAsync(); // the caller will not wait: end it now
            await _rpc.DisposeAsync();
            throw;
        }

        await channel.CloseInputAsync();
        if (await Task.WhenAny(channel.Exited, Task.Delay(wait, CancellationToken.None)) != channel.Exited)
        {
            await channel.KillAsync();
        }

        await _rpc.DisposeAsync();
    }

    /// <summary>
    /// The sandbox's events (network requests through the host's proxy, and VFS operations when
    /// enabled) from now until the sandbox closes or <paramref name="cancellationToken"/> fires.
    /// Each call gets every event; nothing is kept for watchers that start later.
    /// </summary>
    public async IAsyncEnumerable<SandboxEvent> WatchEventsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<SandboxEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (_watchersGate)
        {
            if (_closed)
            {
                yield break;
            }

            _watchers.Add(channel.Writer);
        }

        try
        {
            await foreach (var item in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return item;
            }
        }
        finally
        {
            lock (_watchersGate)
            {
                _watchers.Remove(channel.Writer);
            }
        }
    }

    /// <summary>The network events of <see cref="WatchEventsAsync"/>.</summary>
    public async IAsyncEnumerable<NetworkEvent> WatchNetworkEventsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in WatchEventsAsync(cancellationToken))
        {
            if (item.Network is { } network)
            {
                yield return network;
            }
        }
    }

    /// <summary>The file events of <see cref="WatchEventsAsync"/> (VFS operations, with <see cref="VfsInterception.EmitEvents"/>).</summary>
    public async IAsyncEnumerable<FileEvent> WatchFileEventsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in WatchEventsAsync(cancellationToken))
        {
            if (item.File is { } file)
            {
                yield return file;
            }
        }
    }

    private void OnEvent(JsonElement parameters)
    {
        var item = Wire.Event(parameters);
        lock (_watchersGate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.TryWrite(item);
            }
        }

        if (item.File is { } file && _vfsHooks is { HasAfterHooks: true } vfsHooks)
        {
            vfsHooks.OnFileEvent(this, file);
        }
    }

    private void CompleteWatchers()
    {
        lock (_watchersGate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.TryComplete();
            }

            _watchers.Clear();
        }
    }
}
