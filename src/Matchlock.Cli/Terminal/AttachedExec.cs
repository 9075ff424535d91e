using System.Runtime.InteropServices;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol;

namespace Matchlock.Cli.Terminal;

/// <summary>
/// The one driver of a command attached to this process's terminal, whoever runs its sandbox
/// (<see cref="IExecSession"/>: this process for <c>run</c> and the foreground owner, the owner
/// for <c>exec</c>). With a TTY the terminal is raw while the command runs and its window size
/// is followed; with stdin, fd 0 is copied to the command; output is copied and flushed as it
/// comes. The callers keep their own signal handlers (what a signal means before the command
/// starts differs) and hand signals on with <see cref="Interrupt"/>.
/// </summary>
/// <param name="tty">The command runs on a pseudo-terminal: raw mode here, window size followed.</param>
/// <param name="stdin">The command reads this process's stdin.</param>
/// <param name="onRepeatedInterrupt">
/// What a second (and later) interrupt does: <c>run</c> stops the command with a grace,
/// <c>exec</c> abandons it (the owner stops it).
/// </param>
/// <param name="mark">Told when the request is sent and when the reply came (exec's debug timings).</param>
internal sealed class AttachedExec(bool tty, bool stdin, Func<IExecSession, Task> onRepeatedInterrupt, Action<string>? mark = null)
{
    private readonly Lock _lock = new(); // guards _session and _interrupts
    private IExecSession? _session;
    private int _interrupts;

    /// <summary>How the command ended, and whether the time limit ended it.</summary>
    public readonly record struct Outcome(ExecResult Result, bool TimedOut);

    /// <summary>
    /// A signal the user sent this process: the first goes to the command's process group, the
    /// next ones to the repeated-interrupt action. False when no command runs yet: the caller
    /// decides (abort the boot, exit).
    /// </summary>
    public bool Interrupt(int signal)
    {
        IExecSession? session;
        int count;
        lock (_lock)
        {
            session = _session;
            if (session is null)
            {
                return false;
            }

            count = ++_interrupts;
        }

        _ = count == 1 ? session.SignalAsync(signal, CancellationToken.None).AsTask() : onRepeatedInterrupt(session);
        return true;
    }

    /// <summary>
    /// Starts the command with <paramref name="start"/> and drives it to its end. After
    /// <paramref name="timeout"/> it is cancelled (SIGTERM, SIGKILL after <paramref name="cancelGrace"/>)
    /// and the outcome says so. Output goes to this process's stdout and stderr unless other
    /// streams are given (the detached owner's command log).
    /// </summary>
    public async Task<Outcome> RunAsync(
        Func<CancellationToken, Task<IExecSession>> start,
        CancellationToken cancellationToken,
        TimeSpan? timeout = null,
        TimeSpan? cancelGrace = null,
        Stream? stdout = null,
        Stream? stderr = null)
    {
        using var raw = tty ? RawTerminal.TryEnter() : null;
        await using var session = await start(cancellationToken);
        mark?.Invoke("request_sent");
        lock (_lock)
        {
            _session = session;
        }

        using var winch = tty
            ? PosixSignalRegistration.Create(PosixSignal.SIGWINCH, ctx =>
            {
                ctx.Cancel = true;
                if (RawTerminal.GetSize() is { } size)
                {
                    _ = session.ResizeAsync(size.Rows, size.Cols, CancellationToken.None).AsTask();
                }
            })
            : null;

        var copyOut = StdioStreams.CopyFlushingAsync(session.Stdout, stdout ?? Console.OpenStandardOutput());
        var copyErr = StdioStreams.CopyFlushingAsync(session.Stderr, stderr ?? Console.OpenStandardError());
        if (stdin)
        {
            _ = PumpStdinAsync(session);
        }

        var timedOut = false;
        using var deadline = new CancellationTokenSource();
        if (timeout is { } limit)
        {
            deadline.CancelAfter(limit);
        }

        using var onDeadline = deadline.Token.Register(() =>
        {
            timedOut = true;
            _ = session.CancelAsync(cancelGrace ?? TimeSpan.FromSeconds(2), CancellationToken.None).AsTask();
        });

        var result = await session.WaitAsync(CancellationToken.None);
        mark?.Invoke("reply");
        await Task.WhenAll(copyOut, copyErr);
        return new Outcome(result, timedOut);
    }

    private static async Task PumpStdinAsync(IExecSession session)
    {
        try
        {
            // fd 0 itself: Console.OpenStandardInput() on a terminal is .NET's line-editing reader,
            // which sets its own terminal mode and echoes what it reads (doubling the guest's echo).
            await using var input = StdioStreams.OpenStdin();
            await session.PumpStdinAsync(input, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or MuxStreamResetException or MuxConnectionClosedException)
        {
            // The command ended (or the sandbox went away) before its input did.
        }
    }
}
