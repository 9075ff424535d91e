namespace Matchlock.Core.Sandboxes;

/// <summary>
/// A command running in a sandbox, whoever runs the sandbox: this process
/// (<see cref="ExecSession"/>, from <see cref="Sandbox.StartExecAsync"/>) or the sandbox's owner
/// (<see cref="Owner.RemoteExec"/>, from <see cref="Owner.OwnerClient.StartExecAsync"/>). Whatever
/// drives a command (the CLI's terminal, the owner's control socket, the JSON-RPC server) drives
/// this, so one driver serves every kind of sandbox. Dispose after <see cref="WaitAsync"/>;
/// disposing earlier abandons the command, which is then killed.
/// </summary>
public interface IExecSession : IAsyncDisposable
{
    /// <summary>The command's stdout (with a TTY: the terminal's output).</summary>
    Stream Stdout { get; }

    /// <summary>The command's stderr (empty with a TTY).</summary>
    Stream Stderr { get; }

    /// <summary>Copies <paramref name="source"/> to the command's stdin, then sends end-of-file. Only with <see cref="ExecSpec.Stdin"/>.</summary>
    Task PumpStdinAsync(Stream source, CancellationToken cancellationToken);

    /// <summary>Sends <paramref name="signal"/> to the command's process group. After the end: nothing happens.</summary>
    ValueTask SignalAsync(int signal, CancellationToken cancellationToken);

    /// <summary>The terminal's new size (with a TTY).</summary>
    ValueTask ResizeAsync(int rows, int cols, CancellationToken cancellationToken);

    /// <summary>SIGTERM to the command's process group, then SIGKILL after <paramref name="grace"/>; its status is still reported.</summary>
    ValueTask CancelAsync(TimeSpan grace, CancellationToken cancellationToken);

    /// <summary>Waits for the command to end. Output streams still hold whatever was not read yet.</summary>
    /// <exception cref="MatchlockException">
    /// <see cref="MatchlockErrorKind.OperationFailed"/>: this command could not run or its stream
    /// broke, the sandbox goes on; <see cref="MatchlockErrorKind.SandboxGone"/>: the sandbox (or its
    /// owner) stopped while it ran.
    /// </exception>
    Task<ExecResult> WaitAsync(CancellationToken cancellationToken);
}
