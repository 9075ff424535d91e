using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// A command running in the guest: its stdin, stdout and stderr as streams, and controls
/// (signal, resize, cancel). Dispose after <see cref="WaitAsync"/>; disposing early kills it.
/// </summary>
public sealed class ExecSession : IAsyncDisposable
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

    /// <summary>The command's stdout (with a TTY: the terminal's output).</summary>
    public Stream Stdout { get; }

    /// <summary>The command's stderr (empty with a TTY).</summary>
    public Stream Stderr { get; }

    /// <summary>The command's stdin; dispose it to send end-of-file. Only with <see cref="ExecSpec.Stdin"/>.</summary>
    public Stream Stdin => _spec.Stdin
        ? _stdin ??= _stream.GetWriteStream(StreamChannel.Stdin)
        : throw new InvalidOperationException("this exec was started without stdin (ExecSpec.Stdin = false)");

    /// <summary>Copies <paramref name="source"/> to the command's stdin, then sends end-of-file.</summary>
    public async Task PumpStdinAsync(Stream source, CancellationToken cancellationToken)
    {
        await using var stdin = Stdin;
        await source.CopyToAsync(stdin, 64 * 1024, cancellationToken);
    }

    public ValueTask SignalAsync(int signal, CancellationToken cancellationToken) =>
        SendAsync(new SignalControl(signal), cancellationToken);

    public ValueTask ResizeAsync(int rows, int cols, CancellationToken cancellationToken) =>
        SendAsync(new ResizeControl(rows, cols), cancellationToken);

    /// <summary>SIGTERM to the command's process group, then SIGKILL after <paramref name="grace"/>.</summary>
    public ValueTask CancelAsync(TimeSpan grace, CancellationToken cancellationToken) =>
        SendAsync(new CancelControl((int)grace.TotalMilliseconds), cancellationToken);

    /// <summary>Waits for the command to end. Output streams still hold whatever was not read yet.</summary>
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
