namespace Matchlock.Guest.Agent;

/// <summary>
/// Dedicated threads for the exec pumps (<see cref="OutputPump"/>, <see cref="InputPump"/>),
/// kept parked after a pump ends so the next exec reuses them instead of creating new ones.
/// </summary>
/// <remarks>
/// Why: the pumps block (in read, or waiting for the host's credit), so they cannot run on the
/// thread pool, and starting a thread is expensive here. Under TCG with one vCPU, the two
/// <c>new Thread(…).Start()</c> of every non-PTY exec took ~9 ms together (measured in the guest
/// with the command already exited, bench/exec/README.md): more than the fork+exec of the command
/// itself. A reused thread starts its next pump with one wake-up.
///
/// At most <see cref="MaxIdle"/> threads stay parked (each holds a 256 KiB stack reservation,
/// of which only the touched pages cost memory); a thread finishing its pump when that many are
/// already idle exits, as before. Parked threads do not wake up until they get work.
/// </remarks>
internal sealed class PumpThreads
{
    /// <summary>Enough for a few concurrent execs with stdin (three pumps each).</summary>
    internal const int MaxIdle = 8;

    private const int StackSize = 256 * 1024;

    private readonly Lock _gate = new(); // guards _idle
    private readonly Stack<Worker> _idle = new();

    /// <summary>The guest's pump threads (tests make their own).</summary>
    internal static PumpThreads Shared { get; } = new();

    /// <summary>Threads parked and waiting for work.</summary>
    internal int IdleCount
    {
        get
        {
            lock (_gate)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>Starts up to <paramref name="count"/> threads parked, so the first execs need no thread creation.</summary>
    internal void Prestart(int count)
    {
        for (var i = IdleCount; i < Math.Min(count, MaxIdle); i++)
        {
            _ = new Worker(this, () => { });
        }
    }

    /// <summary>Runs <paramref name="work"/> on a dedicated thread: a parked one if there is one, else a new one.</summary>
    internal void Start(Action work)
    {
        Worker? worker;
        lock (_gate)
        {
            _idle.TryPop(out worker);
        }

        if (worker is null)
        {
            _ = new Worker(this, work);
        }
        else
        {
            worker.Assign(work);
        }
    }

    /// <summary>Parks <paramref name="worker"/> for reuse; false when enough are parked already (the thread then ends).</summary>
    private bool TryPark(Worker worker)
    {
        lock (_gate)
        {
            if (_idle.Count >= MaxIdle)
            {
                return false;
            }

            _idle.Push(worker);
            return true;
        }
    }

    private sealed class Worker
    {
        // Guards _work. Monitor.Wait rather than an event with a spinning phase: on one vCPU a
        // parked thread must cost nothing. (A Monitor, so not System.Threading.Lock.)
        private readonly object _signal = new();
        private readonly PumpThreads _owner;
        private Action? _work;

        internal Worker(PumpThreads owner, Action first)
        {
            _owner = owner;
            _work = first;
            var thread = new Thread(Run, StackSize) { IsBackground = true, Name = "matchlock pump" };
            thread.Start();
        }

        internal void Assign(Action work)
        {
            lock (_signal)
            {
                _work = work;
                Monitor.Pulse(_signal);
            }
        }

        private void Run()
        {
            while (true)
            {
                Action work;
                lock (_signal)
                {
                    while (_work is null)
                    {
                        Monitor.Wait(_signal);
                    }

                    work = _work;
                    _work = null;
                }

                // An exception escaping a pump still ends the process, as it did on a thread of its own.
                work();
                if (!_owner.TryPark(this))
                {
                    return;
                }
            }
        }
    }
}
