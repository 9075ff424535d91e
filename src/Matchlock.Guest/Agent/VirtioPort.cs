using System.Diagnostics;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Finds the named virtio-serial port. There is no udev in the guest, so /dev/virtio-ports/NAME
/// does not exist; the name is in /sys/class/virtio-ports/vportNpM/name and the device node
/// (devtmpfs) is /dev/vportNpM (CONTRACTS.md "Channel").
/// </summary>
internal static class VirtioPort
{
    internal static string WaitFor(string name, TimeSpan timeout, string sysClass = "/sys/class/virtio-ports", string devDirectory = "/dev")
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (Find(name, sysClass) is { } port && File.Exists(Path.Combine(devDirectory, port)))
            {
                return Path.Combine(devDirectory, port);
            }

            if (stopwatch.Elapsed > timeout)
            {
                throw new InvalidOperationException(
                    $"no virtio-serial port named \"{name}\" after {timeout.TotalSeconds:F0} s (is virtio_console loaded, and does QEMU have " +
                    $"-device virtserialport,name={name}?)");
            }

            Thread.Sleep(5);
        }
    }

    /// <summary>The vportNpM whose name file says <paramref name="name"/>, or null.</summary>
    internal static string? Find(string name, string sysClass)
    {
        if (!Directory.Exists(sysClass))
        {
            return null;
        }

        foreach (var port in Directory.EnumerateDirectories(sysClass))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(port, "name")).Trim() == name)
                {
                    return Path.GetFileName(port);
                }
            }
            catch (IOException)
            {
                // Port being set up; the next poll sees it.
            }
        }

        return null;
    }
}
