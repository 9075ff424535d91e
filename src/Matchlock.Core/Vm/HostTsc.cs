using System.Globalization;

namespace Matchlock.Core.Vm;

/// <summary>
/// Host TSC frequency in kHz for <c>tsc_early_khz</c> under TCG (TCG's RDTSC reads the host TSC,
/// so the guest must calibrate against the host's rate; docs/PLATFORM.md "Boot": without it boots can hang).
/// </summary>
internal static class HostTsc
{
    private static readonly Lazy<long> Cached = new(() => ReadKhz(File.Exists, File.ReadAllText));

    public static long Khz => Cached.Value;

    /// <summary>
    /// Prefers <c>/sys/devices/system/cpu/cpu0/tsc_freq_khz</c> (exact, exposed by some kernels),
    /// else the first <c>cpu MHz</c> of /proc/cpuinfo × 1000 (on VMs that is the TSC rate; on
    /// bare metal with frequency scaling it can be off, which only costs accuracy of early
    /// timing: the kernel recalibrates later).
    /// </summary>
    internal static long ReadKhz(Func<string, bool> exists, Func<string, string> readAllText)
    {
        const string sysfs = "/sys/devices/system/cpu/cpu0/tsc_freq_khz";
        if (exists(sysfs) && long.TryParse(readAllText(sysfs).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var khz) && khz > 0)
        {
            return khz;
        }

        if (exists("/proc/cpuinfo"))
        {
            foreach (var line in readAllText("/proc/cpuinfo").Split('\n'))
            {
                if (!line.StartsWith("cpu MHz", StringComparison.Ordinal))
                {
                    continue;
                }

                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && decimal.TryParse(line[(colon + 1)..].Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var mhz) && mhz > 0)
                {
                    return (long)Math.Round(mhz * 1000m, MidpointRounding.AwayFromZero);
                }
            }
        }

        throw new InvalidOperationException(
            "cannot determine the host TSC frequency (no tsc_freq_khz in sysfs, no 'cpu MHz' in /proc/cpuinfo); TCG boots need it");
    }
}
