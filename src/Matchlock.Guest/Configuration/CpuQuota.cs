using System.Globalization;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Fractional CPUs (REFERENCE: --cpus 1.5 → 2 vCPUs, quota 150000/100000) through cgroup v2
/// cpu.max. PID 1 moves itself into a child cgroup, so every process it spawns afterwards starts
/// there and inherits the limit; processes spawned before are not limited, so the host sends the
/// quota in configure, before any exec.
/// </summary>
internal static class CpuQuota
{
    internal const string DefaultCgroupRoot = "/sys/fs/cgroup";
    internal const string SandboxGroup = "sandbox";

    /// <param name="cpuMax">cpu.max syntax: "QUOTA PERIOD" or "max PERIOD" (microseconds).</param>
    /// <param name="cgroupRoot">The cgroup2 mount; a plain directory in tests.</param>
    /// <param name="pid">The process to move (default: ourselves).</param>
    internal static void Apply(string cpuMax, string cgroupRoot = DefaultCgroupRoot, int? pid = null)
    {
        var normalized = Validate(cpuMax);

        // The root cgroup is exempt from "no internal processes", so it may keep PID 1's old
        // threads' history and still delegate the cpu controller to children.
        File.AppendAllText(Path.Combine(cgroupRoot, "cgroup.subtree_control"), "+cpu");
        var group = Path.Combine(cgroupRoot, SandboxGroup);
        Directory.CreateDirectory(group);
        File.WriteAllText(Path.Combine(group, "cpu.max"), normalized);
        // Writing to cgroup.procs moves the whole thread group, all runtime threads included.
        File.WriteAllText(Path.Combine(group, "cgroup.procs"), (pid ?? Environment.ProcessId).ToString(CultureInfo.InvariantCulture));
    }

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
