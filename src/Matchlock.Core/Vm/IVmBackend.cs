namespace Matchlock.Core.Vm;

/// <summary>A way to run microVMs (docs/ARCHITECTURE.md D1: QEMU microvm now, Firecracker later).</summary>
public interface IVmBackend
{
    /// <summary>
    /// Starts the VM and returns once the VMM is running and connected to the channel socket
    /// (not once the guest has said hello: that, and its timeout, belong to the caller).
    /// </summary>
    /// <exception cref="VmStartException">The VMM failed or exited before it connected.</exception>
    /// <exception cref="OperationCanceledException">The caller's token fired; nothing is left running.</exception>
    Task<IVmInstance> StartAsync(VmSpec spec, CancellationToken cancellationToken);
}
