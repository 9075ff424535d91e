using System.Net.Sockets;
using Matchlock.Core.Interop;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol;

namespace Matchlock.Core.Owner;

/// <summary>
/// A connection to the owner of a long-lived sandbox, through its <c>control.sock</c>
/// (docs/ARCHITECTURE.md D9). Used by <c>matchlock exec</c>, <c>allow-list</c> and <c>kill</c>.
/// </summary>
public sealed class OwnerClient : IAsyncDisposable
{
    private readonly MuxConnection _connection;

    private readonly string _vmDir;

    private readonly int _ownerPid;

    private OwnerClient(string id, string vmDir, MuxConnection connection, int ownerPid)
    {
        Id = id;
        _vmDir = vmDir;
        _connection = connection;
        _ownerPid = ownerPid;
    }

    public string Id { get; }

    /// <summary>Connects to the owner of <paramref name="id"/> under <paramref name="vmsDir"/> (default: <see cref="MatchlockPaths.VmsDir"/>).</summary>
    /// <exception cref="OwnerUnavailableException">No such VM, or its owner is not running.</exception>
    public static async Task<OwnerClient> ConnectAsync(string id, string? vmsDir = null, CancellationToken cancellationToken = default)
    {
        if (!VmId.IsValid(id))
        {
            throw new OwnerUnavailableException($"\"{id}\" is not a VM id (they look like vm-1a2b3c4d)");
        }

        var vmDir = Path.Combine(vmsDir ?? MatchlockPaths.VmsDir, id);
        var path = Path.Combine(vmDir, ControlServer.FileName);
        if (!Directory.Exists(vmDir))
        {
            throw new OwnerUnavailableException($"sandbox {id} not found (no {vmDir}); start one with `matchlock run -d --image …`");
        }

        if (!File.Exists(path))
        {
            throw new OwnerUnavailableException(CanList(vmDir)
                ? $"sandbox {id} is not running (stopped, or its owner exited): `matchlock ls` shows its status, `matchlock rm {id}` removes it; only sandboxes started with -d or --rm=false take exec"
                : $"sandbox {id} belongs to another user ({path} is not accessible to you)");
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new OwnerUnavailableException(
                ex.SocketErrorCode == SocketError.AccessDenied
                    ? $"sandbox {id} belongs to another user ({path} is not accessible to you)"
                    : ex.SocketErrorCode == SocketError.ConnectionRefused
                        ? $"sandbox {id} is not running: its owner exited without cleaning up (`matchlock ls` shows it crashed; `matchlock rm {id}` releases what it left)"
                        : $"cannot reach the owner of sandbox {id} at {path}: {ex.SocketErrorCode}", ex);
        }

        var ownerPid = OwnerNative.PeerPid(socket);
        var connection = new MuxConnection(new NetworkStream(socket, ownsSocket: true), isHost: true);
        connection.Start();
        return new OwnerClient(id, vmDir, connection, ownerPid);
    }

    private static bool CanList(string dir)
    {
        try
        {
            _ = Directory.EnumerateFileSystemEntries(dir).Any();
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Starts a command in the sandbox; the caller drives its streams. The owner lays
    /// <paramref name="spec"/> over the image's defaults (<see cref="ExecSpec.OverImage"/>), so its
    /// <see cref="ExecSpec.Env"/> holds only what the caller sets, bare <c>KEY</c>s already resolved.
    /// </summary>
    public async Task<RemoteExec> StartExecAsync(ExecSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var stream = await OpenAsync(new ControlRequest { Op = ControlRequest.ExecOp, Exec = spec.ToRequest(spec.Env) }, cancellationToken);
        return new RemoteExec(stream, spec.Stdin);
    }

    /// <summary>Completes when the connection to the owner ends (it stopped, or the sandbox went away).</summary>
    public Task Closed => _connection.Completion;

    /// <summary>Opens one forwarded connection to a guest port, relayed by the owner (see <see cref="PortForwarding.MuxRelay"/>).</summary>
    public Task<MuxStream> ConnectPortAsync(int port, CancellationToken cancellationToken) =>
        OpenAsync(new ControlRequest { Op = ControlRequest.PortConnect, Port = port }, cancellationToken);

    /// <summary>Why a forwarded connection failed, from the owner's reply; null when it ended well or was reset.</summary>
    public static string? DescribePortFailure(ReadOnlyMemory<byte>? reply)
    {
        if (reply is not { } payload)
        {
            return null;
        }

        try
        {
            var parsed = OwnerJsonContext.ReadReply(payload);
            return parsed.Ok ? null : parsed.Error;
        }
        catch (OwnerProtocolException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>Adds hosts to the allow-list; returns the list after the change.</summary>
    public Task<IReadOnlyList<string>> AllowAsync(IReadOnlyList<string> hosts, CancellationToken cancellationToken) =>
        ChangeAsync(ControlRequest.Allow, hosts, cancellationToken);

    /// <summary>Removes hosts from the allow-list; returns the list after the change.</summary>
    public Task<IReadOnlyList<string>> DisallowAsync(IReadOnlyList<string> hosts, CancellationToken cancellationToken) =>
        ChangeAsync(ControlRequest.Disallow, hosts, cancellationToken);

    /// <summary>
    /// Asks the owner to stop the sandbox (gracefully, with its --graceful-shutdown) and waits
    /// until the owner process has exited: by then the VM, its network and its sockets are
    /// released and the state says stopped (the directory with its logs stays until <c>rm</c>).
    /// </summary>
    /// <exception cref="TimeoutException">The owner accepted but was still running after <paramref name="wait"/>.</exception>
    public async Task KillAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(new ControlRequest { Op = ControlRequest.Kill }, cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        try
        {
            // An rpc owner lives on after its sandbox: then the state record says when all is released.
            while (OwnerNative.IsAlive(_ownerPid) && !(reply.OwnerStays == true && IsReleased()))
            {
                await Task.Delay(50, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"sandbox {Id} accepted kill but its owner (pid {_ownerPid}) is still running after {wait.TotalSeconds:0} s");
        }
    }

    /// <summary>The state record no longer says the sandbox is starting, running or stopping (or is gone).</summary>
    private bool IsReleased()
    {
        using var state = State.VmStateStore.Open();
        return state.Get(Id)?.Status is not (State.VmStatus.Creating or State.VmStatus.Running or State.VmStatus.Stopping);
    }

    private async Task<IReadOnlyList<string>> ChangeAsync(string op, IReadOnlyList<string> hosts, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(new ControlRequest { Op = op, Hosts = hosts }, cancellationToken);
        return reply.AllowList ?? [];
    }

    /// <summary>
    /// How long allow-list and kill requests may wait for the owner's answer. The owner answers
    /// them itself, without the guest, in milliseconds; one that takes longer is hung, and the
    /// user gets an error instead of a terminal that never comes back.
    /// </summary>
    internal static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private async Task<ControlReply> RequestAsync(ControlRequest request, CancellationToken cancellationToken)
    {
        await using var stream = await OpenAsync(request, cancellationToken);
        ControlReply reply;
        try
        {
            reply = OwnerJsonContext.ReadReply(await stream.Reply.WaitAsync(RequestTimeout, cancellationToken));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the owner of {Id} did not answer {request.Op} within {RequestTimeout.TotalSeconds:0} s (is it hung? `matchlock gc --force-running {Id}` releases it)");
        }
        catch (Exception ex) when (ex is MuxConnectionClosedException or MuxStreamResetException)
        {
            throw new OwnerUnavailableException($"the owner of {Id} went away before answering: {ex.Message}", ex);
        }

        return reply.Ok ? reply : throw new OwnerOperationException(reply.Error ?? "the owner refused the request");
    }

    private async Task<MuxStream> OpenAsync(ControlRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await _connection.OpenAsync(OwnerJsonContext.Serialize(request), cancellationToken);
        }
        catch (MuxConnectionClosedException ex)
        {
            throw new OwnerUnavailableException($"the owner of {Id} closed the connection: {ex.Message}", ex);
        }
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
