using Matchlock.Guest.Configuration;

namespace Matchlock.Guest.Agent;

/// <summary>
/// What the agent may touch. In the guest: the real root and every system setting. In tests on
/// a host: a temporary root and no clock/hostname/cgroup changes.
/// </summary>
internal sealed record AgentOptions
{
    /// <summary>Where /etc lives for configure and user lookups.</summary>
    internal string Root { get; init; } = "/";

    internal string CgroupRoot { get; init; } = CgroupLayout.DefaultRoot;

    internal bool SetClock { get; init; } = true;

    internal bool SetHostname { get; init; } = true;

    /// <summary>Configure the NIC from the configure request (never on a test host: it would be the host's).</summary>
    internal bool ConfigureNetwork { get; init; } = true;

    /// <summary>Our own binary for user switching (null: no user switching).</summary>
    internal string? ExecAsHelperPath { get; init; } = "/proc/self/exe";

    internal static AgentOptions Guest { get; } = new();
}
