using System.Diagnostics;
using System.Text;
using Matchlock.Guest.Interop;
using Matchlock.Guest.Processes;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Agent;

/// <summary>
/// One exec stream, start to finish:
/// <list type="number">
/// <item>launch (user, environment, PATH lookup, spawn); a launch failure is reported like a
/// process result: the message on stderr, the shell's exit code (127/126) in the reply, plus
/// <c>error</c>/<c>error_code</c> so the host can tell "could not start" from "ran and failed";</item>
/// <item>pumps: stdout/stderr (or the PTY) to the host with flow control, stdin from the host;</item>
/// <item>controls while it runs: signal, resize, cancel (SIGTERM, SIGKILL after the grace);</item>
/// <item>exit: drain the output (see <see cref="OutputPump"/>), EOF on each output channel, then
/// the reply with exit code, signal and duration.</item>
/// </list>
/// If the host resets the stream or the link dies, the whole process group is killed.
/// </summary>
internal sealed class ExecHandler(CommandLauncher launcher)
{
    /// <summary>How long output must be idle after the command exited before we stop waiting for
    /// EOF (a background process kept the pipe or terminal open).</summary>
    private static readonly TimeSpan DrainIdle = TimeSpan.FromMilliseconds(500);

    internal async Task HandleAsync(MuxStream stream, ExecRequest request, CancellationToken linkClosing)
    {
        var started = Stopwatch.GetTimestamp();
        ChildProcess child;
        try
        {
            child = launcher.Launch(new CommandRequest(request.Argv)
            {
                Environment = request.Env,
                WorkingDirectory = request.WorkingDir,
                CreateWorkingDirectory = request.CreateWorkingDir,
                User = request.User,
                Stdin = request.Stdin,
                Tty = request.Tty,
                Rows = ClampSize(request.Rows, 24),
                Columns = ClampSize(request.Cols, 80),
            });
        }
        catch (Exception e) when (e is SpawnException or NativeCallException or ArgumentException)
        {
            await ReportLaunchFailureAsync(stream, request, e, linkClosing);
            return;
        }

        using (child)
        using (var finished = CancellationTokenSource.CreateLinkedTokenSource(linkClosing))
        {
            var (pumps, terminalInput) = StartPumps(stream, request, child, finished.Token);
            var controls = HandleControlsAsync(stream, child, request, terminalInput, finished.Token);
            var killOnReset = KillWhenStreamFailsAsync(stream, child, finished.Token);

            var status = await child.Exited;
            var duration = Stopwatch.GetElapsedTime(started);
            await DrainAsync(pumps);
            try
            {
                await stream.WriteEofAsync(StreamChannel.Stdout, linkClosing);
                await stream.WriteEofAsync(StreamChannel.Stderr, linkClosing);
                await stream.SendReplyAsync(
                    ProtocolSerializer.Serialize(new GuestReply
                    {
                        ExitCode = status.ShellCode,
                        Signal = status.Signal,
                        DurationMs = (long)duration.TotalMilliseconds,
                    }),
                    linkClosing);
            }
            finally
            {
                await finished.CancelAsync();
                await Task.WhenAll(controls, killOnReset);
            }
        }
    }

    /// <returns>The output pumps, and for a terminal with input the pump that applies controls until its input ends.</returns>
    private static (OutputPump[] Pumps, InputPump? TerminalInput) StartPumps(MuxStream stream, ExecRequest request, ChildProcess child, CancellationToken finished)
    {
        if (child.Terminal is { } terminal)
        {
            InputPump? input = null;
            if (request.Stdin)
            {
                input = new InputPump(stream, terminal, isTerminal: true, finished, message => ApplyControl(message, child, request));
            }

            return ([new OutputPump(terminal, stream, StreamChannel.Stdout, $"matchlock pty {child.Pid}")], input);
        }

        if (child.Stdin is { } stdin)
        {
            _ = new InputPump(stream, stdin, isTerminal: false, finished);
        }

        return (
        [
            new OutputPump(child.Stdout!, stream, StreamChannel.Stdout, $"matchlock stdout {child.Pid}"),
            new OutputPump(child.Stderr!, stream, StreamChannel.Stderr, $"matchlock stderr {child.Pid}"),
        ], null);
    }

    /// <summary>
    /// Waits for every pump to reach the end of its output. One that sits idle in read for
    /// <see cref="DrainIdle"/> is held open by a process that outlived the command: detach it.
    /// Pumps that are busy (waiting for the host's credit) are never cut short.
    /// </summary>
    private static async Task DrainAsync(OutputPump[] pumps)
    {
        var all = Task.WhenAll(pumps.Select(p => p.Forwarding));
        while (!all.IsCompleted)
        {
            foreach (var pump in pumps)
            {
                if (!pump.Forwarding.IsCompleted && pump.IsIdleFor(DrainIdle))
                {
                    pump.Detach();
                }
            }

            await Task.WhenAny(all, Task.Delay(50));
        }
    }

    /// <summary>Applies the stream's controls as they come; after <paramref name="terminalInput"/>, which applies them in order with the input while it runs.</summary>
    private static async Task HandleControlsAsync(MuxStream stream, ChildProcess child, ExecRequest request, InputPump? terminalInput, CancellationToken finished)
    {
        try
        {
            if (terminalInput is not null)
            {
                await terminalInput.Done.WaitAsync(finished);
            }

            await foreach (var message in stream.Controls.ReadAllAsync(finished))
            {
                ApplyControl(message, child, request);
            }
        }
        catch (OperationCanceledException)
        {
            // The exec finished.
        }
    }

    private static void ApplyControl(ReadOnlyMemory<byte> message, ChildProcess child, ExecRequest request)
    {
        try
        {
            switch (ProtocolSerializer.ReadControl(message))
            {
                case SignalControl signal when signal.Signal is > 0 and < 65:
                    child.Signal(signal.Signal);
                    break;
                case ResizeControl resize when child.Pty is { } pty:
                    pty.Resize(ClampSize(resize.Rows, 24), ClampSize(resize.Cols, 80));
                    break;
                case CancelControl cancel:
                    var grace = TimeSpan.FromMilliseconds(cancel.GraceMs > 0 ? cancel.GraceMs : request.KillGraceMs);
                    _ = child.CancelAsync(grace);
                    break;
            }
        }
        catch (Exception e) when (e is MuxProtocolException or NativeCallException)
        {
            // A malformed control or a failed resize must not take the exec down; the host
            // sees the effect (or its absence) in the output.
            Diagnostics.GuestLog.Warn($"exec {child.Pid}: control ignored: {e.Message}");
        }
    }

    private static async Task KillWhenStreamFailsAsync(MuxStream stream, ChildProcess child, CancellationToken finished)
    {
        try
        {
            // Reply completes only on the peer's reply (never, for exec) or faults on reset/link loss.
            await stream.Reply.WaitAsync(finished);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        catch (IOException)
        {
            // Reset by the host or link gone: nobody will read the output; stop the command.
        }

        _ = child.CancelAsync(TimeSpan.Zero);
    }

    private static async Task ReportLaunchFailureAsync(MuxStream stream, ExecRequest request, Exception error, CancellationToken cancellationToken)
    {
        var exitCode = error is SpawnException spawn ? spawn.ExitCode : 126;
        var message = error.Message + (request.Tty ? "\r\n" : "\n");
        await stream.WriteAsync(request.Tty ? StreamChannel.Stdout : StreamChannel.Stderr, Encoding.UTF8.GetBytes(message), cancellationToken);
        await stream.WriteEofAsync(StreamChannel.Stdout, cancellationToken);
        await stream.WriteEofAsync(StreamChannel.Stderr, cancellationToken);
        await stream.SendReplyAsync(
            ProtocolSerializer.Serialize(new GuestReply
            {
                ExitCode = exitCode,
                DurationMs = 0,
                Error = error.Message,
                ErrorCode = error is SpawnException failed ? failed.Code : ErrorCodes.FromException(error),
            }),
            cancellationToken);
    }

    private static ushort ClampSize(int value, ushort fallback) => value is > 0 and <= ushort.MaxValue ? (ushort)value : fallback;
}
