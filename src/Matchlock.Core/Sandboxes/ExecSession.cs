using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// A command running in the guest of a sandbox this process runs: its stdin, stdout and stderr
/// as streams of the guest's exec stream, and controls (signal, resize, cancel). Dispose after
/// <see cref="WaitAsync"/>; disposing early resets the stream, and the guest kills the command.
/// </summary>
public sealed class ExecSession : IExecSession
{
    private readonly MuxStream _stream;
    private readonly ExecSpec _spec;
    private Stream? _stdin;

    internal ExecSession(MuxStream stream, ExecSpec spec)
    {
        _stream = stream;
        _spec = spec;
        Stdout = stream.GetReadStream(StreamChannel.Stdout);
        Stderr = stream.GetReadStream(StreamChannel.Stderr);
    }

    /// <inheritdoc/>
    public Stream Stdout { get; }

    /// <inheritdoc/>
    public Stream Stderr { get; }

    /// <summary>The command's stdin; dispose it to send end-of-file. Only with <see cref="ExecSpec.Stdin"/>.</summary>
    public Stream Stdin => _spec.Stdin
        ? _stdin ??= _stream.GetWriteStream(StreamChannel.Stdin)
        : throw new InvalidOperationException("this exec was started without stdin (ExecSpec.Stdin = false)");

    /// <inheritdoc/>
    public async Task PumpStdinAsync(Stream source, CancellationToken cancellationToken)
    {
        await using var stdin = Stdin;
        await source.CopyToAsync(stdin, 64 * 1024, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask SignalAsync(int signal, CancellationToken cancellationToken) =>
        SendAsync(new SignalControl(signal), cancellationToken);

    /// <inheritdoc/>
    public ValueTask ResizeAsync(int rows, int cols, CancellationToken cancellationToken) =>
        SendAsync(new ResizeControl(rows, cols), cancellationToken);

    /// <inheritdoc/>
    public ValueTask CancelAsync(TimeSpan grace, CancellationToken cancellationToken) =>
        SendAsync(new CancelControl((int)grace.TotalMilliseconds), cancellationToken);

    /// <inheritdoc/>
    /// <exception cref="GuestOperationException">The guest reset the command's stream or answered
    /// with garbage: this command is over, the sandbox goes on.</exception>
    /// <exception cref="SandboxGoneException">The sandbox stopped (or its channel failed) while the command ran.</exception>
    public async Task<ExecResult> WaitAsync(CancellationToken cancellationToken)
    {
        // Unbounded on purpose: a command may run for days. The wait still ends with the
        // stream (reset) or the link (VM gone, corrupt frames), never on nothing.
        var reply = await GuestReplies.WaitAsync(_stream, "exec", bound: null, cancellationToken);
        if (!reply.Ok && reply.ExitCode is null)
        {
            throw new GuestOperationException("exec failed: " + reply.Error, reply.ErrorCode);
        }

        // A command that could not start (not found, bad user) still has a status (127/126) and says why in Error.
        return new ExecResult(reply.ExitCode ?? -1, reply.Signal, TimeSpan.FromMilliseconds(reply.DurationMs ?? 0), reply.Error);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stdin is not null && !_stream.Reply.IsCompleted)
        {
            try
            {
                await _stdin.DisposeAsync();
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException)
            {
                // The command already ended or the link is gone: nothing to close.
            }
        }

        await _stream.DisposeAsync();
    }

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
        catch (InvalidOperationException)
        {
            // Raced with the end of the command.
        }
    }
}
