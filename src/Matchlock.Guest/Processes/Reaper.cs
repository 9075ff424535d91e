using System.Runtime.InteropServices;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Processes;

/// <summary>
/// The only code in the process that waits for children. One dedicated thread blocks in
/// waitid(P_ALL, WEXITED | WNOWAIT | __WALL), then, holding <see cref="_gate"/>, reaps exactly
/// that pid and completes its registration. As PID 1 it also reaps orphans re-parented to us.
/// </summary>
/// <remarks>
/// Why WNOWAIT first: a zombie keeps its pid (and its process group id) reserved. Observing the
/// exit without reaping, then reaping under the lock, means that while a pid is registered here
/// and not completed it cannot have been recycled, so <see cref="TrySignalGroup"/> can kill(-pid)
/// under the same lock without hitting an unrelated process.
///
/// Why the in-flight count: a child can exit before posix_spawn even returns to the spawner. The
/// reaper then finds an unknown pid; while a spawn is in flight it parks the status in
/// <see cref="_early"/> for <see cref="Register"/> to pick up. Unknown pids seen while no spawn is
/// in flight are orphans and are dropped; the early table is cleared whenever the in-flight
/// count returns to zero, so orphans that exit during a spawn do not accumulate.
///
/// Not PID-1 specific: in tests it runs inside the test process and reaps that process's
/// children, so nothing else in that process may wait for children (no System.Diagnostics.Process).
/// </remarks>
internal sealed unsafe class Reaper
{
    private static readonly Lazy<Reaper> SharedInstance = new(() => new Reaper(), LazyThreadSafetyMode.ExecutionAndPublication);

    // Guards _waiting, _early, _inFlight, _generation, setting _noChildren, and the
    // reap-and-complete step (see remarks).
    private readonly Lock _gate = new();
    private readonly Dictionary<int, TaskCompletionSource<ExitStatus>> _waiting = [];
    private readonly Dictionary<int, ExitStatus> _early = [];
    private int _inFlight;

    // Bumped by every spawn, so an ECHILD observed before a spawn cannot claim "no children" after it.
    private long _generation;

    // Released once per spawn so the thread wakes after ECHILD when there is a child again.
    private readonly SemaphoreSlim _spawned = new(0);

    // Set while the reaper has seen ECHILD (no children at all) and nothing was spawned since.
    private readonly ManualResetEventSlim _noChildren = new(false);

    private Reaper()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "matchlock reaper" };
        thread.Start();
    }

    /// <summary>The process-wide reaper (there must be exactly one).</summary>
    internal static Reaper Shared => SharedInstance.Value;

    /// <summary>
    /// Call before posix_spawn; dispose after <see cref="Register"/> (or after a failed spawn).
    /// </summary>
    internal SpawnScope BeginSpawn()
    {
        lock (_gate)
        {
            _inFlight++;
            _generation++;
            _noChildren.Reset();
        }

        return new SpawnScope(this);
    }

    /// <summary>Registers a pid we just spawned; the task completes when it has been reaped.</summary>
    internal Task<ExitStatus> Register(int pid)
    {
        lock (_gate)
        {
            if (_early.Remove(pid, out var early))
            {
                return Task.FromResult(early);
            }

            var completion = new TaskCompletionSource<ExitStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Add(pid, completion);
            return completion.Task;
        }
    }

    /// <summary>
    /// Sends a signal to the process group led by <paramref name="pid"/>, but only while that
    /// leader is registered and not yet reaped, so the group id cannot have been recycled.
    /// Returns false when the leader is already gone.
    /// </summary>
    internal bool TrySignalGroup(int pid, int signal, bool evenAfterLeaderExit = false)
    {
        lock (_gate)
        {
            if (!_waiting.ContainsKey(pid) && !evenAfterLeaderExit)
            {
                return false;
            }

            // ESRCH is normal: the group emptied between our check and the kill.
            return Libc.kill(-pid, signal) == 0;
        }
    }

    /// <summary>True when no child exists (the reaper saw ECHILD and nothing was spawned since).</summary>
    internal bool WaitForNoChildren(TimeSpan timeout) => _noChildren.Wait(timeout);

    private void EndSpawn()
    {
        lock (_gate)
        {
            _inFlight--;
            if (_inFlight == 0)
            {
                // Every spawn has registered its pid; whatever is left here was an orphan.
                _early.Clear();
            }
        }

        // Wake the thread in case it went idle on ECHILD before the spawn created the child.
        _spawned.Release();
    }

    private void Run()
    {
        while (true)
        {
            try
            {
                WaitOnce();
            }
            catch (Exception e)
            {
                // Never let the reaper die: without it every exec would hang forever.
                GuestLog.Error($"reaper: {e.Message}");
                Thread.Sleep(100);
            }
        }
    }

    private void WaitOnce()
    {
        long generation;
        lock (_gate)
        {
            generation = _generation;
        }

        SigInfo info = default;
        if (Libc.waitid(LibcConstants.P_ALL, 0, &info, LibcConstants.WEXITED | LibcConstants.WNOWAIT | LibcConstants.__WALL) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            switch (errno)
            {
                case Errno.EINTR:
                    return;
                case Errno.ECHILD:
                    lock (_gate)
                    {
                        if (_generation == generation)
                        {
                            _noChildren.Set();
                        }
                    }

                    _spawned.Wait();
                    return;
                default:
                    throw new NativeCallException("waitid", errno);
            }
        }

        var pid = info.Pid;
        TaskCompletionSource<ExitStatus>? completion;
        ExitStatus status;
        lock (_gate)
        {
            int raw;
            int reaped;
            do
            {
                reaped = Libc.waitpid(pid, &raw, LibcConstants.__WALL);
            }
            while (reaped < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR);

            if (reaped != pid)
            {
                throw NativeCallException.FromLastError($"waitpid({pid})");
            }

            status = ExitStatus.FromWaitStatus(raw);
            if (!_waiting.Remove(pid, out completion) && _inFlight > 0)
            {
                _early[pid] = status;
            }
        }

        completion?.TrySetResult(status);
    }

    /// <summary>Marks a spawn in flight; see the class remarks.</summary>
    internal readonly struct SpawnScope(Reaper owner) : IDisposable
    {
        public void Dispose() => owner.EndSpawn();
    }
}
