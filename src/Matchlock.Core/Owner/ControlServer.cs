using System.Net.Sockets;
using Matchlock.Core.Interop;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Owner;

/// <summary>
/// Serves <c>control.sock</c> in the VM directory of a long-lived sandbox (docs/ARCHITECTURE.md D9). Each
/// client connection is a <see cref="MuxConnection"/>: every request is one stream, so one
/// client can run several execs at once, each with its own stdin/stdout/stderr and credit.
/// </summary>
/// <remarks>
/// Access: the socket is created inside the VM directory (0700) and chmod'ed 0600, and every
/// peer's uid is checked with SO_PEERCRED, so only the owner's user (or root) can drive it.
/// </remarks>
internal sealed class ControlServer : IAsyncDisposable
{
    public const string FileName = "control.sock";

    private readonly Sandbox _sandbox;
    private readonly Action _onKill;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<MuxConnection> _connections = []; // guarded by itself
    private Task? _acceptLoop;
    private int _inFlight; // requests being handled; dispose lets them send their last reply
    private readonly HashSet<IExecSession> _execs = []; // running commands; guarded by itself
    private readonly ILogger _log;

    private readonly bool _ownerStays;

    private ControlServer(Sandbox sandbox, Action onKill, Socket listener, string path, bool ownerStays)
    {
        _ownerStays = ownerStays;
        _sandbox = sandbox;
        _log = sandbox.Logging.CreateLogger(OwnerLog.Category);
        _onKill = onKill;
        _listener = listener;
        SocketPath = path;
    }

    public string SocketPath { get; }

    /// <summary>Binds the socket and starts accepting.</summary>
    public static ControlServer Start(Sandbox sandbox, Action onKill, bool ownerStays = false)
    {
        var path = Path.Combine(sandbox.Directory, FileName);
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var server = new ControlServer(sandbox, onKill, listener, path, ownerStays);
        OwnerLog.Serving(server._log, path);
        server._acceptLoop = Task.Run(server.AcceptLoopAsync);
        return server;
    }

    private async Task AcceptLoopAsync()
    {
        var ownUid = OwnerNative.EffectiveUid;
        var retry = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            uint peer;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
                retry = TimeSpan.FromMilliseconds(100);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return; // stopping
            }
            catch (SocketException ex)
            {
                // EMFILE, ENOBUFS…: the sandbox must keep answering once the pressure passes, and the
                // failure must leave a trace (it used to end the loop silently: a detached sandbox
                // stopped answering with nothing said anywhere).
                OwnerLog.AcceptFailed(_log, (long)retry.TotalMilliseconds, ex);
                try
                {
                    await Task.Delay(retry, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                continue;
            }

            try
            {
                peer = OwnerNative.PeerUid(client);
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
                OwnerLog.ConnectionEnded(_log, "SO_PEERCRED failed: " + ex.Message);
                client.Dispose();
                continue;
            }

            if (peer != ownUid && peer != 0)
            {
                OwnerLog.PeerRefused(_log, peer);
                client.Dispose(); // another user's process: it gets nothing, not even an error message
                continue;
            }

            var connection = new MuxConnection(new NetworkStream(client, ownsSocket: true), isHost: false, HandleAsync);
            lock (_connections)
            {
                _connections.Add(connection);
            }

            connection.Start();
            _ = ForgetWhenClosedAsync(connection);
        }
    }

    private async Task ForgetWhenClosedAsync(MuxConnection connection)
    {
        try
        {
            await connection.Completion;
        }
        catch (Exception ex) when (ex is MuxConnectionClosedException or MuxProtocolException or IOException)
        {
            // The client went away (or spoke garbage); its streams are aborted with it.
            OwnerLog.ConnectionEnded(_log, ex.Message);
        }

        lock (_connections)
        {
            _connections.Remove(connection);
        }

        await connection.DisposeAsync();
    }

    private async Task HandleAsync(MuxStream stream)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            await HandleCoreAsync(stream);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task HandleCoreAsync(MuxStream stream)
    {
        var request = await AnswerAsync(stream, request => request.Op switch
        {
            ControlRequest.ExecOp => ExecAsync(stream, request),
            ControlRequest.Allow => Task.FromResult(ChangeAllowList(request, add: true)),
            ControlRequest.Disallow => Task.FromResult(ChangeAllowList(request, add: false)),
            ControlRequest.Kill => Task.FromResult(new ControlReply { Ok = true, OwnerStays = _ownerStays ? true : null }),
            ControlRequest.PortConnect => ConnectPortAsync(stream, request),
            _ => Task.FromResult(new ControlReply { Error = $"unknown control operation \"{request.Op}\"" }),
        }, _log);

        if (request?.Op == ControlRequest.Kill)
        {
            OwnerLog.KillRequested(_log);
            _onKill(); // after the answer: stopping closes this connection
        }
    }

    /// <summary>
    /// Parses a client's request, runs it with <paramref name="handle"/> and answers it: with the
    /// handler's reply, or with an error naming what went wrong, unless the client itself is
    /// gone. Returns the request (null when it could not be parsed or the client left).
    /// </summary>
    /// <remarks>
    /// The rule is "answer unless the client's own stream ended", not "by exception type": a
    /// guest that resets the exec it runs raises the same stream-reset exception as a client that
    /// resets its request, and taking the one for the other left <c>matchlock exec</c> waiting
    /// forever for an answer the owner had decided not to send (issue 11, part 5).
    /// </remarks>
    internal static async Task<ControlRequest?> AnswerAsync(MuxStream stream, Func<ControlRequest, Task<ControlReply>> handle, ILogger? log = null)
    {
        log ??= Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        ControlReply reply;
        ControlRequest? request = null;
        try
        {
            request = OwnerJsonContext.ReadRequest(stream.Request);
            OwnerLog.Request(log, request.Op);
            reply = await handle(request);
        }
        catch (Exception) when (ClientIsGone(stream))
        {
            OwnerLog.AnswerLost(log, request?.Op ?? "(unparsed)");
            return null; // nobody to answer: its stream was reset, or its connection closed
        }
        catch (Exception ex) when (ex is MatchlockException or ArgumentException or FormatException or IOException)
        {
            // IOException covers the protocol's own (a reset or corrupt guest stream) that a
            // path did not translate: the client still learns what ended its request.
            reply = new ControlReply { Error = ex.Message, ErrorCode = (ex as GuestOperationException)?.ErrorCode };
        }

        if (reply.Error is { } error)
        {
            OwnerLog.RequestFailed(log, request?.Op ?? "(unparsed)", error);
        }

        try
        {
            await stream.SendReplyAsync(OwnerJsonContext.Serialize(reply), CancellationToken.None);
        }
        catch (Exception ex) when (ex is MuxConnectionClosedException or InvalidOperationException)
        {
            OwnerLog.AnswerLost(log, request?.Op ?? "(unparsed)"); // the client went away before the answer
        }

        return request;
    }

    /// <summary>The client's side of <paramref name="stream"/> ended (reset, or its connection closed): no answer can reach it.</summary>
    private static bool ClientIsGone(MuxStream stream) => stream.Reply.IsFaulted || stream.IsFinishedLocally;

    private ControlReply ChangeAllowList(ControlRequest request, bool add)
    {
        if (_sandbox.Network is not { } networking)
        {
            return new ControlReply { Error = "this sandbox has no network (--no-network): there is no allow-list to change" };
        }

        var hosts = request.Hosts ?? [];
        if (hosts.Count == 0)
        {
            return new ControlReply { Error = "no hosts given" };
        }

        var list = add ? networking.Policy.Allow(hosts) : networking.Policy.Disallow(hosts);
        return new ControlReply { Ok = true, AllowList = list };
    }

    /// <summary>
    /// One connection of a client's <c>port-forward</c>: relays the control stream to a new guest
    /// stream to the port, and answers with how the guest side ended.
    /// </summary>
    private async Task<ControlReply> ConnectPortAsync(MuxStream stream, ControlRequest request)
    {
        if (request.Port is < 1 or > 65535)
        {
            return new ControlReply { Error = $"{request.Port} is not a TCP port (1-65535)" };
        }

        await using var guest = await _sandbox.ConnectPortAsync(request.Port, CancellationToken.None);
        var reply = await MuxRelay.RelayAsync(new MuxRelayEnd(stream), guest);
        return Sandbox.DescribePortFailure(reply) is { } failure
            ? new ControlReply { Error = failure }
            : reply is null ? new ControlReply { Error = "the guest connection was reset" } : new ControlReply { Ok = true };
    }

    /// <summary>Runs a command for the client, relaying its streams and controls, and returns how it ended.</summary>
    private async Task<ControlReply> ExecAsync(MuxStream stream, ControlRequest request)
    {
        if (request.Exec is not { Argv.Count: > 0 } exec)
        {
            return new ControlReply { Error = "exec without a command" };
        }

        // The exec client resolved bare KEYs from its own environment; the owner's is not the user's.
        var spec = ExecSpec.FromRequest(exec).OverImage(_sandbox.Image.Config, _ => null);
        await using var session = await _sandbox.StartExecAsync(spec, CancellationToken.None);
        lock (_execs)
        {
            _execs.Add(session);
        }

        try
        {
            return await RunExecAsync(stream, spec, session);
        }
        finally
        {
            lock (_execs)
            {
                _execs.Remove(session);
            }
        }
    }

    /// <summary>Relays one exec between a client's stream and a guest's, until the command ends or one of them fails.</summary>
    /// <exception cref="GuestOperationException">The guest reset or corrupted the command's stream.</exception>
    /// <exception cref="SandboxGoneException">The sandbox stopped while it ran.</exception>
    /// <exception cref="MuxConnectionClosedException">The client went away (the command was cancelled).</exception>
    internal static async Task<ControlReply> RunExecAsync(MuxStream stream, ExecSpec spec, IExecSession session)
    {
        var stdout = RelayAsync(session.Stdout, stream, StreamChannel.Stdout);
        var stderr = RelayAsync(session.Stderr, stream, StreamChannel.Stderr);
        var controls = RelayControlsAsync(stream, session);
        if (spec.Stdin)
        {
            _ = RelayStdinAsync(stream, session);
        }

        // The client going away (its connection drops, or it resets the stream) faults Reply on
        // our side of the stream: the command is then cancelled, as a closed terminal would.
        // Not cancelled by the owner stopping: the guest's shutdown ends the command, and its status is still reported.
        var wait = session.WaitAsync(CancellationToken.None);
        if (await Task.WhenAny(wait, stream.Reply) != wait)
        {
            await session.CancelAsync(spec.KillGrace, CancellationToken.None);
            await Task.WhenAny(wait, Task.Delay(spec.KillGrace + TimeSpan.FromSeconds(1)));
            throw new MuxConnectionClosedException("the client went away during exec");
        }

        var result = await wait;
        await Task.WhenAll(stdout, stderr);
        _ = controls;
        return new ControlReply
        {
            Ok = true,
            ExitCode = result.ExitCode,
            Signal = result.Signal,
            Error = result.Error,
            DurationMs = (long)result.Duration.TotalMilliseconds,
        };
    }

    /// <summary>Copies one output of the command to the client; if the client is gone, keeps draining so the command never blocks on it.</summary>
    private static async Task RelayAsync(Stream from, MuxStream to, byte channel)
    {
        var buffer = new byte[64 * 1024];
        var clientGone = false;
        while (true)
        {
            int n;
            try
            {
                n = await from.ReadAsync(buffer);
            }
            catch (IOException)
            {
                // The guest's stream was reset or the link failed: the exec's answer says which,
                // and ends the client's channels with it.
                return;
            }

            if (n == 0)
            {
                break;
            }

            clientGone = clientGone || !await TryAsync(() => to.WriteAsync(channel, buffer.AsMemory(0, n), CancellationToken.None));
        }

        if (!clientGone)
        {
            await TryAsync(() => to.WriteEofAsync(channel, CancellationToken.None));
        }
    }

    private static async Task<bool> TryAsync(Func<ValueTask> send)
    {
        try
        {
            await send();
            return true;
        }
        catch (Exception ex) when (ex is MuxConnectionClosedException or MuxStreamResetException or InvalidOperationException)
        {
            return false;
        }
    }

    private static async Task RelayStdinAsync(MuxStream from, IExecSession session)
    {
        try
        {
            await session.PumpStdinAsync(from.GetReadStream(StreamChannel.Stdin), CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or MuxStreamResetException or MuxConnectionClosedException)
        {
            // The command ended, or the client went away, before its input did.
        }
    }

    /// <summary>Resize and signal messages from the client go to the command as they come.</summary>
    private static async Task RelayControlsAsync(MuxStream from, IExecSession session)
    {
        try
        {
            await foreach (var raw in from.Controls.ReadAllAsync())
            {
                switch (ProtocolSerializer.ReadControl(raw))
                {
                    case ResizeControl r:
                        await session.ResizeAsync(r.Rows, r.Cols, CancellationToken.None);
                        break;
                    case SignalControl s:
                        await session.SignalAsync(s.Signal, CancellationToken.None);
                        break;
                    case CancelControl c:
                        await session.CancelAsync(TimeSpan.FromMilliseconds(c.GraceMs), CancellationToken.None);
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is MuxProtocolException or MuxStreamResetException or MuxConnectionClosedException)
        {
            // A bad control message or a vanished client ends the relay, not the command.
        }
    }

    /// <summary>
    /// Graceful stop of the commands clients started: SIGTERM to each one's process group, SIGKILL
    /// after <paramref name="grace"/>, and their clients get the status. Done here rather than by
    /// the guest's shutdown, which closes the channel before its processes end.
    /// </summary>
    public async Task TerminateExecsAsync(TimeSpan grace)
    {
        IExecSession[] running;
        lock (_execs)
        {
            running = [.. _execs];
        }

        foreach (var session in running)
        {
            await session.CancelAsync(grace, CancellationToken.None);
        }

        var time = _sandbox.Time;
        var deadline = time.GetTimestamp() + (long)((grace + TimeSpan.FromSeconds(1)).TotalSeconds * time.TimestampFrequency);
        while (time.GetTimestamp() < deadline && Volatile.Read(ref _inFlight) > 0)
        {
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Takes no new connections; open ones keep working, so commands still running when the
    /// guest is asked to stop can report how they ended (the point of a graceful shutdown).
    /// </summary>
    public async Task StopAcceptingAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAcceptingAsync();

        // Commands the guest's shutdown just ended are still relaying their last output and status.
        for (var waited = 0; Volatile.Read(ref _inFlight) > 0 && waited < 2000; waited += 20)
        {
            await Task.Delay(20);
        }

        MuxConnection[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }

        foreach (var connection in open)
        {
            await connection.DisposeAsync();
        }

        File.Delete(SocketPath);
        _stop.Dispose();
    }
}
