using Matchlock.Core.Vm;
using Matchlock.Protocol;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// What a sandbox holds on the host, and the one order it is released in — shared by a start that
/// failed half-way (<see cref="Sandbox.CreateAsync"/>) and a stop (<see cref="Sandbox.DisposeAsync"/>):
/// <list type="number">
/// <item>the VFS mounts (their relays end and the providers close);</item>
/// <item>the channel to the guest;</item>
/// <item>the VMM (QEMU);</item>
/// <item>the NIC — after the VMM, because QEMU inside the namespace keeps it alive;</item>
/// <item>the event log — after everything that writes to it;</item>
/// <item>attached disks' locks — after the VMM, which had the images open;</item>
/// <item>the VM directory, when the sandbox is removed.</item>
/// </list>
/// Every step runs even when an earlier one failed (a netns is never left because QEMU's clean-up
/// threw); each failure is logged and the first is returned, for the caller to rethrow once it
/// has recorded the outcome. A start fills it in as it makes each thing.
/// </summary>
internal sealed class SandboxResources(string vmDir)
{
    public string VmDir { get; } = vmDir;

    public MuxConnection? Connection { get; set; }

    public IVmInstance? Vm { get; set; }

    public GuestNic? Nic { get; set; }

    public AttachedDisks? Disks { get; set; }

    public Vfs.Mounts.VfsMounts? Vfs { get; set; }

    public Events.SandboxEventLog? Events { get; set; }

    public async ValueTask<Exception?> ReleaseAsync(bool deleteDirectory, ILogger log, string id)
    {
        Exception? first = null;
        async ValueTask Step(string what, Func<ValueTask> release)
        {
            try
            {
                await release();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                SandboxLog.ReleaseFailed(log, id, what, ex);
                first ??= ex;
            }
        }

        await Step("the VFS mounts", () => Vfs?.DisposeAsync() ?? ValueTask.CompletedTask);
        await Step("the guest channel", () => Connection?.DisposeAsync() ?? ValueTask.CompletedTask);
        await Step("the VMM", () => Vm?.DisposeAsync() ?? ValueTask.CompletedTask);
        await Step("the network", () => Nic?.DisposeAsync() ?? ValueTask.CompletedTask);
        await Step("the event log", () => Events?.DisposeAsync() ?? ValueTask.CompletedTask);
        await Step("the attached disks", () =>
        {
            Disks?.Dispose();
            return ValueTask.CompletedTask;
        });
        if (deleteDirectory)
        {
            await Step("the VM directory", () =>
            {
                DeleteDirectory(VmDir);
                return ValueTask.CompletedTask;
            });
        }

        return first;
    }

    /// <summary>Best effort: what cannot be deleted now is reported by the next sweep.</summary>
    private static void DeleteDirectory(string dir)
    {
        try
        {
            if (System.IO.Directory.Exists(dir))
            {
                Interop.HostMounts.UnmountAllUnder(dir);
                System.IO.Directory.Delete(dir, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The sweep reports it; never mask the error that brought us here.
        }
    }
}
