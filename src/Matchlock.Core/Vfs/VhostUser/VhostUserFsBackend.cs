using System.Net.Sockets;
using Matchlock.Core.Vfs.Fuse;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// Our own virtio-fs device back-end (a virtiofsd of ours, docs/VFS.md "vhost-user transport"):
/// QEMU's <c>vhost-user-fs-device</c> connects to a UNIX socket bound here before QEMU starts;
/// the guest kernel's virtiofs driver puts FUSE requests on virtqueues in shared guest memory and
/// they are answered from a <see cref="FuseServer"/>, so providers, confinement and ownership are
/// the same as on the channel relay. Exactly one connection is accepted; it is served until QEMU
/// disconnects or this is disposed.
/// </summary>
internal sealed class VhostUserFsBackend : IAsyncDisposable
{
    /// <summary>virtio-fs queue 0 is hiprio; the kernel (6.1) uses one request queue.</summary>
    public const int RequestQueues = 1;

    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly ILogger _log;
    private Socket? _connection; // guarded by _gate
    private bool _disposed; // guarded by _gate

    private VhostUserFsBackend(string socketPath, Socket listener, ILogger log)
    {
        SocketPath = socketPath;
        _listener = listener;
        _log = log;
    }

    public string SocketPath { get; }

    /// <summary>Ends when the connection ends (or was never made before dispose); its result says why.</summary>
    public Task<string> Completion { get; private set; } = Task.FromResult("not started");

    /// <summary>Binds <paramref name="socketPath"/> (0600; a stale file there is replaced) and waits for QEMU in the background.</summary>
    /// <param name="slowRequests">Requests may take long (hooks with timeouts): none is served on a queue's own thread.</param>
    /// <exception cref="IOException">The socket could not be bound.</exception>
    public static VhostUserFsBackend Listen(string socketPath, FuseServer server, ILogger log, bool slowRequests = false)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            File.Delete(socketPath);
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(1);
        }
        catch (SocketException ex)
        {
            listener.Dispose();
            throw new IOException($"cannot listen on {socketPath}: {ex.Message}", ex);
        }

        var backend = new VhostUserFsBackend(socketPath, listener, log);
        backend.Completion = backend.ServeAsync(chain => VirtioFsRequests.Serve(chain, server, log), !slowRequests);
        return backend;
    }

    private async Task<string> ServeAsync(Func<DescriptorChain, uint> serve, bool serveLastInline)
    {
        Socket connection;
        try
        {
            connection = await _listener.AcceptAsync(_stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            return "closed before the front-end connected";
        }
        finally
        {
            _listener.Dispose(); // exactly one front-end
        }

        lock (_gate)
        {
            if (_disposed)
            {
                connection.Dispose();
                return "closed before the front-end connected";
            }

            _connection = connection;
        }

        connection.Blocking = true;
        var session = new VhostUserSession(connection, 1 + RequestQueues, serve, _log, serveLastInline);
        var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            string reason;
            try
            {
                reason = session.Run();
            }
#pragma warning disable CA1031 // whatever ends the session, the owner goes on: the mount stops answering
            catch (Exception ex)
#pragma warning restore CA1031
            {
                reason = $"failed: {ex}";
            }

            if (reason == VhostUserSession.Disconnected)
            {
                VhostUserLog.SessionEnded(_log, SocketPath, reason);
            }
            else
            {
                VhostUserLog.SessionFailed(_log, SocketPath, reason); // fail closed: the front-end broke the protocol
            }

            done.TrySetResult(reason);
        })
        {
            IsBackground = true,
            Name = "vhost-user-fs",
        };
        thread.Start();
        try
        {
            return await done.Task;
        }
        finally
        {
            connection.Dispose();
        }
    }

    /// <summary>Stops accepting, ends the connection (its queues stop, guest memory is unmapped), deletes the socket.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            try
            {
                _connection?.Shutdown(SocketShutdown.Both); // wakes the session's recvmsg with end of stream
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }
        }

        await _stop.CancelAsync();
        await ((Task)Completion).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
            // The VM directory is being removed anyway.
        }
    }
}
