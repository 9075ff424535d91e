namespace Matchlock.Guest.Init;

/// <summary>
/// What virtio devices the VM has, from sysfs (virtio_mmio registers them while it loads, before
/// any device driver is there). Lets boot load a driver only when its device exists.
/// </summary>
internal static class VirtioDevices
{
    /// <summary>Virtio device id of a network card (virtio spec 1.2, section 5).</summary>
    internal const int Net = 1;

    internal static bool Has(int deviceId, string busDir = "/sys/bus/virtio/devices")
    {
        if (!Directory.Exists(busDir))
        {
            return false;
        }

        foreach (var device in Directory.EnumerateDirectories(busDir))
        {
            try
            {
                var text = File.ReadAllText(Path.Combine(device, "device")).Trim();
                if (text.StartsWith("0x", StringComparison.Ordinal)
                    && int.TryParse(text.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var id)
                    && id == deviceId)
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // Went away or unreadable: not the device we are looking for.
            }
        }

        return false;
    }
}
