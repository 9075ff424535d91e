using Matchlock.Guest.Interop;
using Matchlock.Guest.Processes;
using Matchlock.Protocol;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Applies an exec's control messages (signal, resize, cancel) in order with its stdin: a resize
/// the host sent before some input is in effect before that input reaches the command.
/// </summary>
/// <remarks>
/// The mux queues controls and stdin data as they arrive, but two threads consume them: the
/// controls loop here (thread pool) and the <see cref="InputPump"/>. Without coordination the
/// pump could write "go\n" to the terminal before the resize sent ahead of it was applied, and
/// the command would read the old size (SandboxTests' PTY resize test failed that way 2 of 3
/// runs, before any exec-speed change). So the pump calls <see cref="ApplyPending"/> before
/// each write: whatever control arrived before the data it holds is then either applied or
/// applied by it, since taking a message and applying it happen under one lock.
/// </remarks>
internal sealed class ExecControls(MuxStream stream, ChildProcess child, ExecRequest request)
{
    private readonly Lock _apply = new(); // guards _closed and makes take-and-apply atomic
    private bool _closed;

    /// <summary>Applies the controls as they come until <paramref name="finished"/>.</summary>
    internal async Task RunAsync(CancellationToken finished)
    {
        try
        {
            while (await stream.Controls.WaitToReadAsync(finished))
            {
                ApplyPending();
            }
        }
        catch (OperationCanceledException)
        {
            // The exec finished.
        }
    }

    /// <summary>Applies every control message that has arrived so far (called by the stdin pump before each write).</summary>
    internal void ApplyPending()
    {
        lock (_apply)
        {
            while (!_closed && stream.Controls.TryRead(out var message))
            {
                Apply(message);
            }
        }
    }

    /// <summary>The exec is over: the child's handles are about to be closed, nothing more is applied.</summary>
    internal void Close()
    {
        lock (_apply)
        {
            _closed = true;
        }
    }

    private void Apply(ReadOnlyMemory<byte> message)
    {
        try
        {
            switch (ProtocolSerializer.ReadControl(message))
            {
                case SignalControl signal when signal.Signal is > 0 and < 65:
                    child.Signal(signal.Signal);
                    break;
                case ResizeControl resize when child.Pty is { } pty:
                    pty.Resize(ExecHandler.ClampSize(resize.Rows, TerminalDefaults.Rows), ExecHandler.ClampSize(resize.Cols, TerminalDefaults.Cols));
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
}
