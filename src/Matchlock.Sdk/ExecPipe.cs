using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

/// <summary>
/// A command running with its stdin, stdout and stderr connected to this process (<c>exec_pipe</c>).
/// Write to <see cref="StandardInput"/> and dispose it to send EOF; read the output streams until
/// they end; <see cref="WaitAsync"/> gives the exit status. Disposing it while the command runs
/// cancels the command.
/// </summary>
public sealed class ExecPipe : IAsyncDisposable
{
    private readonly InteractiveExec _exec;

    internal ExecPipe(InteractiveExec exec)
    {
        _exec = exec;
    }

    /// <summary>The command's stdin (write-only). Disposing it sends EOF.</summary>
    public Stream StandardInput => _exec.StandardInput;

    /// <summary>The command's stdout (read-only); it ends when the command ends.</summary>
    public Stream StandardOutput => _exec.StandardOutput;

    /// <summary>The command's stderr (read-only); it ends when the command ends.</summary>
    public Stream StandardError => _exec.StandardError;

    /// <summary>Sends EOF on stdin (as disposing <see cref="StandardInput"/> does).</summary>
    public Task CloseStandardInputAsync() => _exec.CloseStdinAsync();

    /// <summary>Waits for the command to end. Cancelling cancels the command.</summary>
    /// <exception cref="MatchlockExecException">The command could not run.</exception>
    public Task<ExecStatus> WaitAsync(CancellationToken cancellationToken = default) => _exec.WaitAsync(cancellationToken);

    /// <summary>Cancels the command if it still runs, and ends the output streams.</summary>
    public ValueTask DisposeAsync() => _exec.DisposeAsync();
}

/// <summary>
/// A command running on a pseudo-terminal (<c>exec_tty</c>): one <see cref="Output"/> stream
/// (stdout and stderr together, as a terminal shows them), <see cref="Input"/> for keystrokes,
/// and <see cref="ResizeAsync"/> for the window size.
/// </summary>
public sealed class ExecTty : IAsyncDisposable
{
    private readonly InteractiveExec _exec;

    internal ExecTty(InteractiveExec exec)
    {
        _exec = exec;
    }

    /// <summary>What is typed into the terminal (write-only). Disposing it sends EOF.</summary>
    public Stream Input => _exec.StandardInput;

    /// <summary>What the terminal shows (read-only); it ends when the command ends.</summary>
    public Stream Output => _exec.StandardOutput;

    /// <summary>Sets the terminal's size.</summary>
    public Task ResizeAsync(int rows, int cols, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        return _exec.SendAsync(".resize", w =>
        {
            w.WriteNumber("rows", rows);
            w.WriteNumber("cols", cols);
        }, cancellationToken);
    }

    /// <summary>Sends EOF on the terminal's input.</summary>
    public Task CloseInputAsync() => _exec.CloseStdinAsync();

    /// <summary>Waits for the command to end. Cancelling cancels the command.</summary>
    public Task<ExecStatus> WaitAsync(CancellationToken cancellationToken = default) => _exec.WaitAsync(cancellationToken);

    /// <summary>Cancels the command if it still runs, and ends <see cref="Output"/>.</summary>
    public ValueTask DisposeAsync() => _exec.DisposeAsync();
}
