using System.Diagnostics;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Finds virtio disks by their serial (/sys/block/vdX/serial), never by order (CONTRACTS.md).
/// The virtio-mmio devices are probed asynchronously after virtio_blk loads, so the disks can
/// appear a little after the module list is done: poll, with a bound.
/// </summary>
internal static class BlockDevices
{
    internal static IReadOnlyDictionary<string, string> WaitForSerials(IReadOnlyCollection<string> serials, TimeSpan timeout, string sysBlock = "/sys/block")
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            var found = Scan(sysBlock);
            if (serials.All(found.ContainsKey))
            {
                return found;
            }

            if (stopwatch.Elapsed > timeout)
            {
                var seen = found.Count == 0 ? "none" : string.Join(", ", found.Select(p => $"{p.Value} (serial {p.Key})"));
                var missing = string.Join(", ", serials.Where(s => !found.ContainsKey(s)));
                throw new InvalidOperationException(
                    $"no virtio disk with serial {missing} after {timeout.TotalSeconds:F0} s; disks seen: {seen}. " +
                    "Check that the VM was started with the disks (serial=...) and that virtio_blk/virtio_mmio loaded.");
            }

            Thread.Sleep(5);
        }
    }

    /// <summary>serial → /dev/vdX for every vd* disk that has a serial file.</summary>
    internal static Dictionary<string, string> Scan(string sysBlock)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(sysBlock))
        {
            return result;
        }

        foreach (var device in Directory.EnumerateDirectories(sysBlock, "vd*"))
        {
            var serialFile = Path.Combine(device, "serial");
            string serial;
            try
            {
                serial = File.ReadAllText(serialFile).Trim();
            }
            catch (IOException)
            {
                // Disappeared or not ready yet; the next poll sees it.
                continue;
            }

            if (serial.Length > 0)
            {
                result.TryAdd(serial, "/dev/" + Path.GetFileName(device));
            }
        }

        return result;
    }
}
