using System.Globalization;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Fractional CPUs (docs/COMPATIBILITY.md "CLI": --cpus 1.5 → 2 vCPUs, quota 150000/100000) through cgroup v2
/// cpu.max on the sandbox group (<see cref="CgroupLayout.SetCpuMax"/>): the user's processes
/// get the quota, the agent is not bound by it.
/// </summary>
internal static class CpuQuota
{
    /// <summary>Checks the cpu.max value and returns it normalized ("QUOTA PERIOD").</summary>
    internal static string Validate(string cpuMax)
    {
        var parts = cpuMax.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2
            || !(parts[0] == "max" || (long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var quota) && quota >= 1000))
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var period) || period < 1000 || period > 1_000_000)
        {
            throw new ArgumentException(
                $"cpu.max must be \"QUOTA PERIOD\" or \"max PERIOD\" in microseconds (quota >= 1000, period 1000-1000000), got \"{cpuMax}\"",
                nameof(cpuMax));
        }

        return $"{parts[0]} {parts[1]}";
    }
}
