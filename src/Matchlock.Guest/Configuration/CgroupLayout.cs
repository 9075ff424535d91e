using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Matchlock.Guest.Interop;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// The guest's cgroup v2 layout (issue 11, part 5): management and the user's processes in two
/// sibling groups, so what the user runs cannot starve the agent that answers the host.
/// <code>
/// /sys/fs/cgroup                  (root: only kernel threads stay here)
/// ├── agent    PID 1 and every thread of it: cpu.weight 10000, memory.min/low, no pids limit
/// └── sandbox  every process exec and the entrypoint start: pids.max (default 4096),
///              memory.max = RAM − reserve, cpu.weight 100, cpu.max for fractional --cpus
/// </code>
/// </summary>
/// <remarks>
/// Why siblings and not "PID 1 in the sandbox group" (what CpuQuota did before): a child
/// cgroup's limits bind everything in it, so the agent shared the user's cpu.max and, with a
/// fork bomb, its CPU share with 10,000 runnable processes (exec took minutes to answer).
/// cpu.weight splits CPU between siblings under contention only: 10000:100 gives the agent
/// 99% of what it asks for and the user everything the agent does not use.
///
/// The agent group has no pids.max: the agent's own threads (thread pool, pump threads) and
/// the clone of each spawn never fail because the user exhausted the sandbox's pids. Memory:
/// the sandbox's memory.max leaves <see cref="ReserveBytes"/> outside the user's reach, so the
/// kernel and the agent (about 20 MiB resident, measured with VmTests) always have room, and
/// memory.min keeps the agent's pages from being reclaimed for the user's. A memory hog in the
/// sandbox meets its own group's OOM killer, which only picks from the sandbox group.
///
/// Every step is attempted and its failure recorded in <see cref="Problems"/>: a kernel
/// without one controller still gets the others.
/// </remarks>
internal sealed class CgroupLayout : IDisposable
{
    internal const string DefaultRoot = "/sys/fs/cgroup";
    internal const string AgentGroup = "agent";
    internal const string SandboxGroup = "sandbox";
    internal const int DefaultPidsLimit = 4096;
    internal const int AgentCpuWeight = 10000;
    internal const int SandboxCpuWeight = 100;

    /// <summary>Kept from reclaim for the agent (memory.min); measured resident size ~20 MiB, with headroom.</summary>
    internal const long AgentMemoryMin = 32L * 1024 * 1024;

    private const long MiB = 1024 * 1024;

    private readonly SafeFileHandle? _sandboxProcs; // sandbox/cgroup.procs, opened once (see Enter)
    private SafeFileHandle? _agentProcs; // agent/cgroup.procs, opened on the first sweep (see TryReadAgentProcs)
    private readonly List<string> _problems;
    private int _enterFailuresLogged;

    private CgroupLayout(string root, int agentPid, SafeFileHandle? sandboxProcs, List<string> problems)
    {
        Root = root;
        _agentPid = agentPid;
        _sandboxProcs = sandboxProcs;
        _problems = problems;
    }

    private readonly int _agentPid;

    internal string Root { get; }

    internal string SandboxPath => Path.Combine(Root, SandboxGroup);

    /// <summary>The sandbox group's cgroup.procs, for the exec-as helper to move itself.</summary>
    internal string SandboxProcsPath => Path.Combine(SandboxPath, "cgroup.procs");

    /// <summary>What could not be set up, one line each; empty when everything was.</summary>
    internal IReadOnlyList<string> Problems => _problems;

    /// <summary>Memory kept from the user's processes: max(64 MiB, 1/8 of RAM).</summary>
    internal static long ReserveBytes(long memoryTotal) => Math.Max(64 * MiB, memoryTotal / 8);

    /// <summary>The sandbox's memory.max: RAM less the reserve, but never under half the RAM (tiny VMs).</summary>
    internal static long SandboxMemoryMax(long memoryTotal) => Math.Max(memoryTotal - ReserveBytes(memoryTotal), memoryTotal / 2);

    /// <summary>
    /// Creates both groups, applies the defaults, and moves <paramref name="agentPid"/> (with all
    /// its threads: cgroup.procs moves a whole thread group) into the agent group.
    /// </summary>
    /// <param name="root">The cgroup2 mount; a plain directory in tests.</param>
    /// <param name="memoryTotal">RAM the kernel manages (MemTotal), in bytes.</param>
    internal static CgroupLayout Create(string root, long memoryTotal, int agentPid)
    {
        var problems = new List<string>();
        void Step(string what, Action action)
        {
            try
            {
                action();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add($"{what}: {e.Message}");
            }
        }

        // One controller per write: a write naming one the kernel lacks fails as a whole.
        foreach (var controller in new[] { "cpu", "memory", "pids" })
        {
            Step($"enable {controller}", () => File.AppendAllText(Path.Combine(root, "cgroup.subtree_control"), "+" + controller));
        }

        var agent = Path.Combine(root, AgentGroup);
        var sandbox = Path.Combine(root, SandboxGroup);
        Step("create groups", () =>
        {
            Directory.CreateDirectory(agent);
            Directory.CreateDirectory(sandbox);
        });

        var reserve = ReserveBytes(memoryTotal);
        Step("agent cpu.weight", () => Write(agent, "cpu.weight", AgentCpuWeight));
        Step("agent memory.min", () => Write(agent, "memory.min", Math.Min(AgentMemoryMin, reserve / 2)));
        Step("agent memory.low", () => Write(agent, "memory.low", reserve));
        Step("sandbox cpu.weight", () => Write(sandbox, "cpu.weight", SandboxCpuWeight));
        Step("sandbox pids.max", () => Write(sandbox, "pids.max", DefaultPidsLimit));
        Step("sandbox memory.max", () => Write(sandbox, "memory.max", SandboxMemoryMax(memoryTotal)));
        // Kill the whole sandbox group on OOM? No: a memory hog should die alone, not take the
        // user's shell with it (memory.oom.group stays 0).
        Step("move the agent", () => Write(agent, "cgroup.procs", agentPid));

        SafeFileHandle? procs = null;
        Step("open sandbox cgroup.procs", () => procs = File.OpenHandle(Path.Combine(sandbox, "cgroup.procs"), FileMode.OpenOrCreate, FileAccess.Write));
        return new CgroupLayout(root, agentPid, procs, problems);
    }

    /// <summary>pids.max of the sandbox group; 0 or less means no limit.</summary>
    internal void SetPidsLimit(int limit) =>
        File.WriteAllText(Path.Combine(SandboxPath, "pids.max"), limit <= 0 ? "max" : limit.ToString(CultureInfo.InvariantCulture));

    /// <summary>cpu.max of the sandbox group (fractional --cpus), after <see cref="CpuQuota.Validate"/>.</summary>
    internal void SetCpuMax(string cpuMax) => File.WriteAllText(Path.Combine(SandboxPath, "cpu.max"), CpuQuota.Validate(cpuMax));

    /// <summary>
    /// Moves a just-spawned process into the sandbox group: one write(2) on a descriptor opened
    /// at boot, so it needs no open (no path walk, no allocation in the kernel's fd table) when
    /// the user's processes press on memory. A process that already exited (ESRCH) is fine.
    /// </summary>
    internal unsafe void Enter(int pid)
    {
        if (_sandboxProcs is null)
        {
            return;
        }

        var text = Encoding.ASCII.GetBytes(pid.ToString(CultureInfo.InvariantCulture));
        nint written;
        fixed (byte* p = text)
        {
            written = Libc.write((int)_sandboxProcs.DangerousGetHandle(), p, (nuint)text.Length);
        }

        if (written < 0 && Marshal.GetLastPInvokeError() is var errno && errno != Errno.ESRCH
            && Interlocked.Increment(ref _enterFailuresLogged) <= 3)
        {
            Diagnostics.GuestLog.Warn($"moving pid {pid} into the sandbox cgroup: {NativeCallException.Describe(errno)}");
        }
    }

    /// <summary>
    /// Moves every process but the agent out of the agent group into the sandbox group, until
    /// none is left (or <paramref name="maxPasses"/>); returns how many it moved.
    /// </summary>
    /// <remarks>
    /// The agent group should only ever hold PID 1. Anything else there is a grandchild that a
    /// command forked in the instant between its exec and our <see cref="Enter"/> (see
    /// ChildPlacement). Measured, not theoretical: a fork bomb's first shell forks at once, and
    /// under TCG on a busy host its first generations sometimes escaped, grew in the agent group
    /// without pids.max until the kernel's threads-max, and then the agent's own posix_spawn
    /// failed with EAGAIN. Repeated passes catch what strays fork while we move them; once moved,
    /// their children are born in the sandbox group.
    /// </remarks>
    internal int SweepStrays(int maxPasses = 64)
    {
        var moved = 0;
        var pids = new List<int>();
        for (var pass = 0; pass < maxPasses; pass++)
        {
            pids.Clear();
            if (!TryReadAgentProcs(pids))
            {
                return moved;
            }

            var found = false;
            foreach (var pid in pids)
            {
                if (pid != _agentPid)
                {
                    Enter(pid);
                    moved++;
                    found = true;
                }
            }

            if (!found)
            {
                return moved;
            }
        }

        return moved;
    }

    /// <summary>
    /// The PIDs in agent/cgroup.procs, read through one handle opened on first use, with pread at
    /// offset 0 (a cgroup file is generated afresh from the start on each such read). This runs
    /// after every spawn: File.ReadAllText's open, stat, reader and string split cost a
    /// measurable share of an exec under TCG (bench/exec).
    /// </summary>
    private bool TryReadAgentProcs(List<int> pids)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            var handle = _agentProcs;
            if (handle is null)
            {
                handle = File.OpenHandle(Path.Combine(Root, AgentGroup, "cgroup.procs"), FileMode.Open, FileAccess.Read);
                if (Interlocked.CompareExchange(ref _agentProcs, handle, null) is { } other)
                {
                    handle.Dispose();
                    handle = other;
                }
            }

            var length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    var bigger = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var n = RandomAccess.Read(handle, buffer.AsSpan(length), length);
                if (n == 0)
                {
                    break;
                }

                length += n;
            }

            var value = -1;
            foreach (var b in buffer.AsSpan(0, length))
            {
                if (b is >= (byte)'0' and <= (byte)'9')
                {
                    value = (value < 0 ? 0 : value * 10) + (b - '0');
                }
                else
                {
                    if (value >= 0)
                    {
                        pids.Add(value);
                    }

                    value = -1;
                }
            }

            if (value >= 0)
            {
                pids.Add(value);
            }

            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// SIGKILLs every process in the sandbox group at once (cgroup.kill, Linux 5.14): unlike
    /// kill(-1) it cannot be outrun by a fork bomb, because the kernel also kills what is forked
    /// into the group while it walks it. False when the kernel or the group lacks it.
    /// </summary>
    internal bool KillAll()
    {
        try
        {
            File.WriteAllText(Path.Combine(SandboxPath, "cgroup.kill"), "1");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Diagnostics.GuestLog.Warn($"cgroup.kill: {e.Message}");
            return false;
        }
    }

    /// <summary>MemTotal from /proc/meminfo, in bytes; 0 when unreadable.</summary>
    internal static long ReadMemoryTotal(string meminfo = "/proc/meminfo")
    {
        try
        {
            foreach (var line in File.ReadLines(meminfo))
            {
                // "MemTotal:         498000 kB"
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)
                    && long.TryParse(line["MemTotal:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var kib))
                {
                    return kib * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    public void Dispose()
    {
        _sandboxProcs?.Dispose();
        _agentProcs?.Dispose();
    }

    private static void Write(string group, string file, long value) =>
        File.WriteAllText(Path.Combine(group, file), value.ToString(CultureInfo.InvariantCulture));
}
