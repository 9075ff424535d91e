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
/// <item>exit: drain the output (see <see cref="OutputPump"/>), then EOF on each output channel
/// and the reply with exit code, signal and duration, in one write.</item>
/// </list>
/// If the host resets the stream or the link dies, the whole process group is killed.
/// </summary>
internal sealed class ExecHandler(CommandLauncher launcher)
{
    /// <summary>How long output must be idle after the command exited before we stop waiting for
    /// EOF (a background process kept the pipe or terminal open).</summary>
    private static readonly TimeSpan DrainIdle = TimeSpan.FromMilliseconds(500);

    /// <summary>Ended explicitly (EOF frames) together with the reply, in one write.</summary>
    private static readonly ReadOnlyMemory<byte> OutputChannels = new[] { StreamChannel.Stdout, StreamChannel.Stderr };

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
                Rows = ClampSize(request.Rows, TerminalDefaults.Rows),
                Columns = ClampSize(request.Cols, TerminalDefaults.Cols),
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
            var controls = new ExecControls(stream, child, request);
            var pumps = StartPumps(stream, request, child, controls, finished.Token);
            var applying = controls.RunAsync(finished.Token);
            var killOnReset = KillWhenStreamFailsAsync(stream, child, finished.Token);

            var status = await child.Exited;
            var duration = Stopwatch.GetElapsedTime(started);
            await DrainAsync(pumps);
            try
            {
                await stream.SendReplyAsync(
                    ProtocolSerializer.Serialize(new GuestReply
                    {
                        ExitCode = status.ShellCode,
                        Signal = status.Signal,
                        DurationMs = (long)duration.TotalMilliseconds,
                    }),
                    OutputChannels,
                    linkClosing);
            }
            finally
            {
                await finished.CancelAsync();
                await Task.WhenAll(applying, killOnReset);
                controls.Close();
            }
        }
    }

    private static OutputPump[] StartPumps(MuxStream stream, ExecRequest request, ChildProcess child, ExecControls controls, CancellationToken finished)
    {
        if (child.Terminal is { } terminal)
        {
            if (request.Stdin)
            {
                _ = new InputPump(stream, terminal, isTerminal: true, controls.ApplyPending, finished);
            }

            return [new OutputPump(terminal, stream, StreamChannel.Stdout)];
        }

        if (child.Stdin is { } stdin)
        {
            _ = new InputPump(stream, stdin, isTerminal: false, controls.ApplyPending, finished);
        }

        return
        [
            new OutputPump(child.Stdout!, stream, StreamChannel.Stdout),
            new OutputPump(child.Stderr!, stream, StreamChannel.Stderr),
        ];
    }

    /// <summary>
    /// Waits for every pump to reach the end of its output. One that sits idle in read for
    /// <see cref="DrainIdle"/> is held open by a process that outlived the command: detach it.
    /// Pumps that are busy (waiting for the host's credit) are never cut short.
    /// </summary>
    private static async Task DrainAsync(OutputPump[] pumps)
    {
        var exitedAt = Environment.TickCount64;
        var all = Task.WhenAll(pumps.Select(p => p.Forwarding));
        while (!all.IsCompleted)
        {
            foreach (var pump in pumps)
            {
                if (!pump.Forwarding.IsCompleted && pump.IsIdleFor(DrainIdle, exitedAt))
                {
                    pump.Detach();
                }
            }

            await Task.WhenAny(all, Task.Delay(50));
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
        await stream.SendReplyAsync(
            ProtocolSerializer.Serialize(new GuestReply
            {
                ExitCode = exitCode,
                DurationMs = 0,
                Error = error.Message,
                ErrorCode = error is SpawnException failed ? failed.Code : ErrorCodes.FromException(error),
            }),
            OutputChannels,
            cancellationToken);
    }

    internal static ushort ClampSize(int value, ushort fallback) => value is > 0 and <= ushort.MaxValue ? (ushort)value : fallback;
}
