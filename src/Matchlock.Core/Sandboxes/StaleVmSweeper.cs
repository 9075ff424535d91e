using System.Globalization;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// Removes what ephemeral (<c>--rm</c>) sandboxes of dead owners left behind: a QEMU that outlived
/// its owner and the VM directory. Long-lived sandboxes are left to <c>rm</c>/<c>prune</c>.
/// </summary>
internal static class StaleVmSweeper
{
    public static void Sweep(string vmsDir)
    {
        if (!Directory.Exists(vmsDir))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(vmsDir))
        {
            var id = Path.GetFileName(dir);
            if (!VmId.IsValid(id) || OwnerRecord.IsOwnerAlive(dir, out var remove) || !remove)
            {
                continue;
            }

            KillOrphanedVmm(dir, id);
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Another process is sweeping the same directory; it will finish the job.
            }
        }
    }

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
