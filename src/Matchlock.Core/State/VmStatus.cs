namespace Matchlock.Core.State;

/// <summary>
/// Where a VM is in its life. All but <see cref="Crashed"/> are recorded transitions (the
/// lifecycle log); <see cref="Crashed"/> is derived when a live-looking VM's owner is gone.
/// </summary>
public enum VmStatus
{
    Creating,
    Running,
    Stopping,
    Stopped,
    Cleaned,
    Failed,
    Crashed,
}

/// <summary>Wire names (lower case, as <c>ls</c> and the JSON print them) and the legal transitions.</summary>
public static class VmStatuses
{
    public static string Name(this VmStatus status) => status switch
    {
        VmStatus.Creating => "creating",
        VmStatus.Running => "running",
        VmStatus.Stopping => "stopping",
        VmStatus.Stopped => "stopped",
        VmStatus.Cleaned => "cleaned",
        VmStatus.Failed => "failed",
        VmStatus.Crashed => "crashed",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static VmStatus Parse(string name) => name switch
    {
        "creating" => VmStatus.Creating,
        "running" => VmStatus.Running,
        "stopping" => VmStatus.Stopping,
        "stopped" => VmStatus.Stopped,
        "cleaned" => VmStatus.Cleaned,
        "failed" => VmStatus.Failed,
        _ => throw new VmStateException($"unknown VM status '{name}' in the state database (written by a newer matchlock?)"),
    };

    /// <summary>True while an owner process is expected to hold the VM (so a dead owner means crashed).</summary>
    public static bool NeedsOwner(this VmStatus status) => status is VmStatus.Creating or VmStatus.Running or VmStatus.Stopping;

    /// <summary>
    /// creating → running → stopping → stopped → cleaned; failed from any live state; cleaned from
    /// anything (reconciliation releases crashed and failed VMs too).
    /// </summary>
    public static bool CanMove(VmStatus from, VmStatus to) => (from, to) switch
    {
        (_, VmStatus.Cleaned) => from != VmStatus.Cleaned,
        (VmStatus.Creating, VmStatus.Running) => true,
        (VmStatus.Creating or VmStatus.Running, VmStatus.Stopping) => true,
        (VmStatus.Creating or VmStatus.Running or VmStatus.Stopping, VmStatus.Stopped) => true,
        (VmStatus.Creating or VmStatus.Running or VmStatus.Stopping, VmStatus.Failed) => true,
        _ => false,
    };
}
