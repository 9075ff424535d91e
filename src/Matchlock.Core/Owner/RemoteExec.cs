using Matchlock.Core.Sandboxes;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Owner;

/// <summary>
/// A command running in a long-lived sandbox, seen through its owner's control socket: the
/// client half of the owner's relay of an <see cref="ExecSession"/>. Disposing before the end
/// abandons the command (the owner then cancels it).
/// </summary>
public sealed class RemoteExec : IExecSession
{
    private readonly MuxStream _stream;
    private readonly bool _stdin;

    internal RemoteExec(MuxStream stream, bool stdin)
    {
        _stream = stream;
        _stdin = stdin;
        Stdout = stream.GetReadStream(StreamChannel.Stdout);
        Stderr = stream.GetReadStream(StreamChannel.Stderr);
    }

    /// <inheritdoc/>
    public Stream Stdout { get; }

    /// <inheritdoc/>
    public Stream Stderr { get; }

    /// <inheritdoc/>
    public async Task PumpStdinAsync(Stream source, CancellationToken cancellationToken)
    {
        if (!_stdin)
        {
            throw new InvalidOperationException("this exec was started without stdin (ExecSpec.Stdin = false)");
        }

        await using var stdin = _stream.GetWriteStream(StreamChannel.Stdin);
        await source.CopyToAsync(stdin, 64 * 1024, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask SignalAsync(int signal, CancellationToken cancellationToken) => SendAsync(new SignalControl(signal), cancellationToken);

    /// <inheritdoc/>
    public ValueTask ResizeAsync(int rows, int cols, CancellationToken cancellationToken) => SendAsync(new ResizeControl(rows, cols), cancellationToken);

    /// <inheritdoc/>
    public ValueTask CancelAsync(TimeSpan grace, CancellationToken cancellationToken) =>
        SendAsync(new CancelControl((int)grace.TotalMilliseconds), cancellationToken);

    /// <inheritdoc/>
    /// <exception cref="OwnerUnavailableException">The owner went away (sandbox killed) while it ran.</exception>
    /// <exception cref="OwnerOperationException">The command could not be started, or was abandoned.</exception>
    public async Task<ExecResult> WaitAsync(CancellationToken cancellationToken)
    {
        ControlReply reply;
        try
        {
            reply = OwnerJsonContext.ReadReply(await _stream.Reply.WaitAsync(cancellationToken));
        }
        catch (MuxStreamResetException ex) when (_stream.IsFinishedLocally)
        {
            throw new OwnerOperationException("exec abandoned (interrupted twice); the owner stops the command: " + ex.Message);
        }
        catch (Exception ex) when (ex is MuxConnectionClosedException or MuxStreamResetException)
        {
            // Also what a peer of another uid sees: the owner closes such connections unanswered.
            throw new OwnerUnavailableException("the sandbox's owner closed the connection (it stopped, or it refuses this user): " + ex.Message, ex);
        }

        if (!reply.Ok || reply.ExitCode is not { } exit)
        {
            // The owner's errors name the exec already ("exec failed: …", "exec ended without a status: …").
            throw new OwnerOperationException(reply.Error ?? "exec failed: no reason given");
        }

        return new ExecResult(exit, reply.Signal, TimeSpan.FromMilliseconds(reply.DurationMs ?? 0), reply.Error);
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();

    private async ValueTask SendAsync(ExecControl control, CancellationToken cancellationToken)
    {
        if (_stream.Reply.IsCompleted)
        {
            return; // already ended: a late signal or resize has nothing to act on
        }

        try
        {
            await _stream.SendControlAsync(ProtocolSerializer.Serialize(control), cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or MuxConnectionClosedException)
        {
            // Raced with the end of the command.
        }
    }
}
