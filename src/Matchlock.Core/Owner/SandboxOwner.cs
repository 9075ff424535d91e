using Microsoft.Extensions.Logging;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Core.Owner;

/// <summary>
/// The owner process's half of a long-lived sandbox (docs/ARCHITECTURE.md D9): holds the <see cref="Sandbox"/>,
/// serves its control socket, and on <c>kill</c>, a signal or the VM's own exit stops the guest
/// (with <see cref="GracefulShutdown"/>) and releases everything.
/// </summary>
public sealed class SandboxOwner : IAsyncDisposable
{
    private readonly Sandbox _sandbox;
    private readonly ControlServer _server;
    private readonly TaskCompletionSource _killed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SandboxOwner(Sandbox sandbox, TimeSpan gracefulShutdown, bool staysAfterStop)
    {
        _sandbox = sandbox;
        GracefulShutdown = gracefulShutdown;
        _server = ControlServer.Start(sandbox, () => _killed.TrySetResult(), staysAfterStop);
    }

    public Sandbox Sandbox => _sandbox;

    /// <summary>Time the guest's processes get between SIGTERM and the power-off when the sandbox stops.</summary>
    public TimeSpan GracefulShutdown { get; }

    public string ControlSocketPath => _server.SocketPath;

    /// <summary>Takes ownership of a running sandbox and starts serving its control socket.</summary>
    /// <param name="staysAfterStop">
    /// This process goes on after the sandbox stopped (the rpc server): <c>matchlock kill</c> then
    /// waits for the state record to say stopped instead of for this process to exit.
    /// </param>
    public static SandboxOwner Start(Sandbox sandbox, TimeSpan gracefulShutdown, bool staysAfterStop = false) => new(sandbox, gracefulShutdown, staysAfterStop);

    /// <summary>Why <see cref="WaitAsync"/> returned.</summary>
    public enum StopReason
    {
        Killed,
        Signalled,
        VmExited,
    }

    /// <summary>Waits until a client asks for <c>kill</c>, <paramref name="stop"/> fires (a signal), or the VM exits on its own.</summary>
    public async Task<StopReason> WaitAsync(CancellationToken stop)
    {
        var signalled = Task.Delay(Timeout.Infinite, stop);
        var first = await Task.WhenAny(_killed.Task, signalled, _sandbox.Exited);
        var reason = first == _killed.Task ? StopReason.Killed : first == signalled ? StopReason.Signalled : StopReason.VmExited;
        OwnerLog.Stopping(_sandbox.Logging.CreateLogger(OwnerLog.Category), reason switch
        {
            StopReason.Killed => "matchlock kill",
            StopReason.Signalled => "a signal (SIGINT, SIGTERM or SIGHUP)",
            _ => $"the VM exited by itself (status {_sandbox.Exited.Result})",
        });
        return reason;
    }

    /// <summary>Stops serving, stops the guest gracefully, then releases the VM and its resources.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            _sandbox.RecordStopping();

            // No new clients while the guest shuts down; running commands get SIGTERM and the
            // grace from the guest, and their clients still learn how they ended.
            await _server.StopAcceptingAsync();
            await _server.TerminateExecsAsync(GracefulShutdown);
            await _sandbox.StopAsync(GracefulShutdown);
            await _server.DisposeAsync();
        }
        finally
        {
            await _sandbox.DisposeAsync();
        }
    }
}
