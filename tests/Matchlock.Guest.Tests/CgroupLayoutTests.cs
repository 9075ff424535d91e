using System.Globalization;
using Matchlock.Guest.Configuration;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The guest's cgroup layout written on a plain directory (what the agent would write to
/// /sys/fs/cgroup): which files get which values, and where processes are moved. That the
/// kernel enforces them is the VM tier's part (GuestResilienceVmTests).
/// </summary>
public sealed class CgroupLayoutTests : IDisposable
{
    private const long MiB = 1024 * 1024;
    private readonly string _root = Directory.CreateTempSubdirectory("matchlock-cgroup-test-").FullName;

    public CgroupLayoutTests() => File.WriteAllText(Path.Combine(_root, "cgroup.subtree_control"), "");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Read(string relative) => File.ReadAllText(Path.Combine(_root, relative));

    [Fact]
    public void The_agent_and_the_users_processes_get_sibling_groups_with_their_limits()
    {
        using var layout = CgroupLayout.Create(_root, 512 * MiB, agentPid: 4242);

        Assert.Empty(layout.Problems);
        Assert.Equal("+cpu+memory+pids", Read("cgroup.subtree_control")); // one write per controller
        Assert.Equal("4242", Read("agent/cgroup.procs"));
        Assert.Equal("10000", Read("agent/cpu.weight"));
        Assert.Equal((32 * MiB).ToString(CultureInfo.InvariantCulture), Read("agent/memory.min"));
        Assert.Equal((64 * MiB).ToString(CultureInfo.InvariantCulture), Read("agent/memory.low"));
        Assert.Equal("100", Read("sandbox/cpu.weight"));
        Assert.Equal("4096", Read("sandbox/pids.max"));
        Assert.Equal((448 * MiB).ToString(CultureInfo.InvariantCulture), Read("sandbox/memory.max"));
        Assert.False(File.Exists(Path.Combine(_root, "sandbox/cpu.max"))); // whole CPUs: no quota
    }

    [Theory]
    [InlineData(512, 64, 448)]     // the 64 MiB floor
    [InlineData(4096, 512, 3584)]  // 1/8 of RAM
    [InlineData(96, 64, 48)]       // tiny VM: the user keeps at least half
    public void The_reserve_is_the_larger_of_64_MiB_and_an_eighth_of_ram(long ramMiB, long reserveMiB, long sandboxMiB)
    {
        Assert.Equal(reserveMiB * MiB, CgroupLayout.ReserveBytes(ramMiB * MiB));
        Assert.Equal(sandboxMiB * MiB, CgroupLayout.SandboxMemoryMax(ramMiB * MiB));
    }

    [Theory]
    [InlineData(100, "100")]
    [InlineData(0, "max")]
    [InlineData(-1, "max")]
    public void The_pids_limit_goes_to_the_sandbox_group_only(int limit, string expected)
    {
        using var layout = CgroupLayout.Create(_root, 512 * MiB, agentPid: 1);
        layout.SetPidsLimit(limit);
        Assert.Equal(expected, Read("sandbox/pids.max"));
        Assert.False(File.Exists(Path.Combine(_root, "agent/pids.max")));
    }

    [Fact]
    public void A_cpu_quota_binds_the_sandbox_group_not_the_agent()
    {
        using var layout = CgroupLayout.Create(_root, 512 * MiB, agentPid: 1);
        layout.SetCpuMax("150000  100000");
        Assert.Equal("150000 100000", Read("sandbox/cpu.max"));
        Assert.False(File.Exists(Path.Combine(_root, "agent/cpu.max")));
        Assert.Throws<ArgumentException>(() => layout.SetCpuMax("lots"));
    }

    [Fact]
    public void Entering_writes_each_pid_to_the_sandbox_procs_and_kill_writes_cgroup_kill()
    {
        using var layout = CgroupLayout.Create(_root, 512 * MiB, agentPid: 1);
        layout.Enter(101);
        layout.Enter(102);
        Assert.Equal("101102", Read("sandbox/cgroup.procs")); // a plain file: one write(2) each, in order
        Assert.True(layout.KillAll());
        Assert.Equal("1", Read("sandbox/cgroup.kill"));
    }

    [Fact]
    public void Processes_that_escaped_into_the_agent_group_are_swept_into_the_sandbox_group()
    {
        using var layout = CgroupLayout.Create(_root, 512 * MiB, agentPid: 7);
        File.WriteAllText(Path.Combine(_root, "agent/cgroup.procs"), "7\n300\n301\n");
        // A plain file does not lose the pids it "moved", so one pass finds them again: bound it.
        Assert.Equal(2, layout.SweepStrays(maxPasses: 1));
        Assert.Equal("300301", Read("sandbox/cgroup.procs"));

        File.WriteAllText(Path.Combine(_root, "agent/cgroup.procs"), "7\n");
        Assert.Equal(0, layout.SweepStrays());
    }

    [Fact]
    public void A_missing_controller_is_reported_and_the_rest_still_applies()
    {
        File.Delete(Path.Combine(_root, "cgroup.subtree_control"));
        Directory.CreateDirectory(Path.Combine(_root, "cgroup.subtree_control")); // writes to it fail
        using var layout = CgroupLayout.Create(_root, 512 * MiB, agentPid: 7);
        Assert.Equal(3, layout.Problems.Count);
        Assert.All(layout.Problems, p => Assert.StartsWith("enable ", p, StringComparison.Ordinal));
        Assert.Equal("7", Read("agent/cgroup.procs"));
        Assert.Equal("4096", Read("sandbox/pids.max"));
    }

    [Fact]
    public void Mem_total_is_read_from_meminfo_in_bytes()
    {
        var meminfo = Path.Combine(_root, "meminfo");
        File.WriteAllText(meminfo, "MemTotal:         498000 kB\nMemFree:  1 kB\n");
        Assert.Equal(498000L * 1024, CgroupLayout.ReadMemoryTotal(meminfo));
        Assert.Equal(0, CgroupLayout.ReadMemoryTotal(Path.Combine(_root, "missing")));
    }

    [Fact]
    public async Task Configure_sets_the_pids_limit_and_exec_puts_the_command_in_the_sandbox_group()
    {
        await using var harness = new AgentHarness();
        var reply = await harness.RequestAsync(new ConfigureRequest { Hostname = "box", PidsLimit = 64 });
        Assert.True(reply.Ok, reply.Error);
        Assert.Equal("64", File.ReadAllText(Path.Combine(harness.Root, "cgroup/sandbox/pids.max")));

        var (exec, stdout, _) = await harness.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "echo $$"] });
        Assert.Equal(0, exec.ExitCode);
        Assert.Contains(stdout.Trim(), File.ReadAllText(Path.Combine(harness.Root, "cgroup/sandbox/cgroup.procs")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Configure_without_a_pids_limit_keeps_the_default()
    {
        await using var harness = new AgentHarness();
        var reply = await harness.RequestAsync(new ConfigureRequest { Hostname = "box" });
        Assert.True(reply.Ok, reply.Error);
        Assert.Equal("4096", File.ReadAllText(Path.Combine(harness.Root, "cgroup/sandbox/pids.max")));
    }
}
