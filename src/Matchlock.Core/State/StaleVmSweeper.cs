using System.Globalization;
using Matchlock.Core.Network.Plumbing;

namespace Matchlock.Core.State;

/// <summary>
/// Removes what ephemeral (<c>--rm</c>) sandboxes of dead owners left behind: a QEMU that outlived
/// its owner and the VM directory. Long-lived sandboxes are left to <c>rm</c>/<c>prune</c>.
/// </summary>
internal static class StaleVmSweeper
{
    /// <summary>Removes dead owners' VMs; returns their ids (their network namespaces are dead too: <see cref="SweepNetworksAsync"/>).</summary>
    public static IReadOnlyList<string> Sweep(string vmsDir)
    {
        var removed = new List<string>();
        if (!Directory.Exists(vmsDir))
        {
            return removed;
        }

        foreach (var dir in Directory.EnumerateDirectories(vmsDir))
        {
            var id = Path.GetFileName(dir);
            if (!VmId.IsValid(id) || OwnerRecord.IsOwnerAlive(dir, out var remove) || !remove)
            {
                continue;
            }

            KillOrphanedVmm(dir, id);
            removed.Add(id);
            try
            {
                Interop.HostMounts.UnmountAllUnder(dir); // a VFS overlay view a dead owner left
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Another process is sweeping the same directory; it will finish the job.
            }
        }

        return removed;
    }

    /// <summary>
    /// Removes the network namespaces (with their taps and nftables tables) of VMs that are gone:
    /// run after <see cref="Sweep"/>, which has killed orphaned VMMs. A namespace of this home's VM
    /// is dead when the VM's owner is; one this home has no record of belongs to another
    /// MATCHLOCK_HOME (namespaces are host-wide), so it is left alone while young, and removed
    /// only once old and empty (no process inside; <see cref="NetworkNamespace.SweepAsync"/> checks).
    /// </summary>
    /// <param name="removed">Ids <see cref="Sweep"/> just removed: dead, although their records are gone.</param>
    public static Task<IReadOnlyList<string>> SweepNetworksAsync(string vmsDir, CancellationToken cancellationToken, IReadOnlyCollection<string>? removed = null) =>
        NetworkNamespace.SweepAsync(id =>
        {
            if (removed?.Contains(id) == true)
            {
                return false;
            }

            var dir = Path.Combine(vmsDir, id);
            if (Directory.Exists(dir))
            {
                return OwnerRecord.IsOwnerAlive(dir, out _);
            }

            return !VmId.IsValid(id) || NetworkNamespace.CreatedUtc(id) is not { } created || DateTime.UtcNow - created < UnknownNamespaceGrace;
        }, cancellationToken);

    // Longer than any start takes from namespace creation to QEMU running inside it.
    private static readonly TimeSpan UnknownNamespaceGrace = TimeSpan.FromMinutes(10);

    private static void KillOrphanedVmm(string dir, string id)
    {
        try
        {
            var pid = int.Parse(File.ReadAllText(Path.Combine(dir, "qemu.pid")).Trim(), CultureInfo.InvariantCulture);

            // Only a process whose command line names this VM's directory is ours to kill.
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            if (cmdline.Contains(id, StringComparison.Ordinal))
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                process.Kill();
                process.WaitForExit(5000);
            }
        }
        catch (Exception ex) when (ex is IOException or FormatException or ArgumentException or InvalidOperationException or UnauthorizedAccessException)
        {
            // No pid file, or the process is already gone.
        }
    }
}
