using Matchlock.Protocol;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

public sealed partial class Sandbox
{
    /// <summary>Completes when the VMM exits for any reason.</summary>
    public Task<int> Exited => _vm.Exited;

    /// <summary>
    /// Stops the guest cleanly: its processes get SIGTERM and <paramref name="grace"/> to exit,
    /// then the guest syncs and powers off. Kills the VMM if it does not exit in time.
    /// </summary>
    public async Task StopAsync(TimeSpan grace, CancellationToken cancellationToken = default)
    {
        var deadline = grace + TimeSpan.FromSeconds(5);
        SandboxLog.Stopping(_log, Id, (long)grace.TotalMilliseconds);
        if (!_vm.Exited.IsCompleted && !_connection.IsClosed)
        {
            // First the VFS mounts: the guest unmounts and sends what its kernel still held; after
            // the shutdown reply there is no channel left to send it on.
            await _vfs.CloseAsync();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(deadline);
            try
            {
                await RequestAsync(new ShutdownRequest { GraceMs = (int)grace.TotalMilliseconds }, timeout.Token);
                await _vm.WaitForExitAsync(timeout.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or MatchlockException or MuxStreamResetException or MuxConnectionClosedException)
            {
                // The guest did not stop by itself in time; the kill below is the fallback.
                SandboxLog.GracefulStopFailed(_log, Id, ex);
            }
        }

        if (!_vm.Exited.IsCompleted)
        {
            await _vm.KillAsync(CancellationToken.None);
        }
    }

    /// <summary>Marks the sandbox stopping in the state (<c>ls</c> shows it) before a graceful stop begins.</summary>
    internal void RecordStopping() => _state?.Stopping();

    /// <summary>Stopped, and with <c>--rm</c> cleaned and forgotten once its directory is gone; never throws.</summary>
    private void RecordStopped()
    {
        if (_state is null)
        {
            return;
        }

        _state.Stopped();
        if (Spec.RemoveOnDispose)
        {
            _state.ForgetIfReleased(_vmDir);
        }

        _state.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _state?.Stopping();
        try
        {
            if (Spec.RemoveOnDispose && !_disks.AnyWritable && !_vfs.AnyWritable)
            {
                // Everything the guest could still flush is deleted with the VM directory, so a
                // clean shutdown buys nothing; killing the VMM saves ~0.3 s per run under TCG.
                // Not with a writable --disk: what the guest has not written back yet, and a
                // clean unmount, belong to a volume that outlives the VM (or, through a host_fs
                // mount, to the user's own folder).
                await _vm.KillAsync(CancellationToken.None);
            }
            else
            {
                await StopAsync(TimeSpan.FromSeconds(2));
            }
        }
        finally
        {
            var failed = await new SandboxResources(_vmDir) { Connection = _connection, Vm = _vm, Nic = _nic, Disks = _disks, Vfs = _vfs, Events = Events }.ReleaseAsync(Spec.RemoveOnDispose, _log, Id);
            SandboxLog.Released(_log, Id, Spec.RemoveOnDispose ? ", VM directory" : "; the VM directory is kept until rm");
            RecordStopped();
            if (failed is not null)
            {
                // Everything else was released and recorded; what could not be is gc's to retry.
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
            }
        }
    }
}
