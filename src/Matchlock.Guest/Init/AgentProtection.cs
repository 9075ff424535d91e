using Matchlock.Guest.Agent;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Diagnostics;

namespace Matchlock.Guest.Init;

/// <summary>
/// What PID 1 does before serving so that management never waits on the user's processes
/// (issue 11, part 5); the cgroup side is <see cref="Configuration.CgroupLayout"/>.
/// </summary>
internal static class AgentProtection
{
    /// <summary>Threads the runtime may start without its injection delay, and pump threads started now.</summary>
    internal const int ReservedThreads = 8;

    /// <summary>How often the agent group is swept for processes that escaped the sandbox group.</summary>
    internal static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// A dedicated thread (not the pool: it must run when the pool is busy) that moves strays
    /// out of the agent group every <see cref="SweepInterval"/>; see <see cref="CgroupLayout.SweepStrays"/>.
    /// </summary>
    internal static void StartStraySweeper(CgroupLayout cgroups)
    {
        var thread = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(SweepInterval);
                var moved = cgroups.SweepStrays();
                if (moved > 0)
                {
                    GuestLog.Warn($"moved {moved} process(es) that escaped into the agent's cgroup to the sandbox's");
                }
            }
        }, 64 * 1024) { IsBackground = true, Name = "matchlock cgroup sweeper" };
        thread.Start();
    }

    internal static void Apply()
    {
        // No oom_score_adj -1000 here: the kernel never OOM-kills init (oom_unkillable_task →
        // is_global_init), so it would protect nothing, while every child inherits it and had to
        // be put back to 0 by a /proc write per exec (+1-2 ms under TCG, bench/exec) lest the
        // sandbox group's OOM killer find nothing it may kill.

        // Start now what management needs later, so that serving the host under a fork bomb
        // needs no thread creation: the thread pool's first ReservedThreads workers come without
        // its starvation delay, and the exec pumps find parked threads. (The agent's group has
        // no pids.max, so a clone would still succeed; this keeps it off the critical path.)
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, ReservedThreads), Math.Max(io, ReservedThreads));
        PumpThreads.Shared.Prestart(PumpThreads.MaxIdle);
    }
}
