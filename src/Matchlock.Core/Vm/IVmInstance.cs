namespace Matchlock.Core.Vm;

/// <summary>
/// One running VM. The owner must dispose it; disposal guarantees the VMM process is gone and
/// removes the sockets and pid file it created.
/// </summary>
public interface IVmInstance : IAsyncDisposable
{
    /// <summary>The VMM process id (also in <c>WorkDir/qemu.pid</c> for crash cleanup).</summary>
    int Pid { get; }

    /// <summary>Completes with the VMM exit code (128 + signal when killed).</summary>
    Task<int> Exited { get; }

    /// <summary>
    /// The host end of the virtio-serial channel. Do not treat EOF as end-of-stream: closing
    /// drops data in flight (docs/PLATFORM.md "virtio-serial channel"), the protocol carries its own end markers.
    /// </summary>
    Stream Channel { get; }

    /// <summary>Waits for the VMM to exit; the token only stops the wait, not the VM.</summary>
    Task<int> WaitForExitAsync(CancellationToken cancellationToken);

    /// <summary>Kills the VMM immediately (SIGKILL) and waits for it to exit.</summary>
    Task KillAsync(CancellationToken cancellationToken);

    /// <summary>Last <paramref name="lines"/> lines of the guest console, for error messages.</summary>
    string ReadConsoleTail(int lines);
}
