using System.Globalization;
using Matchlock.Guest.Configuration;

namespace Matchlock.Guest.Processes;

/// <summary>
/// Where a user process goes the moment it exists: into the sandbox cgroup, and (when the agent
/// runs with a lowered OOM score, which the guest's PID 1 does not: see
/// <see cref="Init.AgentProtection"/>) back to the kernel's default OOM score.
/// </summary>
/// <remarks>
/// posix_spawn cannot create a child in another cgroup (that needs clone3 with
/// CLONE_INTO_CGROUP, which glibc's posix_spawn does not use), so the child starts in the
/// agent's group and is moved right after posix_spawn returns. Residual race: in between, the
/// command has been exec'd and could fork; such a grandchild stays in the agent group, outside
/// pids.max and memory.max. The window is one write(2) after the exec (the exec-as helper
/// closes it for non-root users by moving itself before it execs the command; for root that
/// would cost every exec a second exec, ~20 ms under TCG, measured). So after each move we also
/// sweep the agent group (<see cref="CgroupLayout.SweepStrays"/>): whatever escaped is moved
/// too, and a periodic sweep (<see cref="Init.AgentProtection"/>) catches the rest. What is left
/// is acceptable because the cgroup limits are not the security boundary: root in the guest can
/// rewrite any cgroup file anyway. What the host relies on is that every wait on the guest is
/// bounded or ends with the guest's stream (GuestReplies on the host), so a guest that starves
/// its agent only hurts itself.
/// </remarks>
internal sealed class ChildPlacement(CgroupLayout? cgroups, bool resetOomScore)
{
    /// <summary>Leaves children where they are (tests without cgroups, the self-test).</summary>
    internal static ChildPlacement None { get; } = new(null, false);

    /// <summary>The sandbox group's cgroup.procs for the exec-as helper; null without cgroups.</summary>
    internal string? CgroupProcsPath => cgroups?.SandboxProcsPath;

    /// <summary>True when children inherit an OOM score they must not keep.</summary>
    internal bool ResetsOomScore => resetOomScore;

    internal void Place(int pid)
    {
        cgroups?.Enter(pid);
        cgroups?.SweepStrays();
        if (resetOomScore)
        {
            try
            {
                File.WriteAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/oom_score_adj", "0");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Already exited (ENOENT/ESRCH): nothing to protect.
            }
        }
    }
}
