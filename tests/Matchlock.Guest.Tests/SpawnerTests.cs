using System.Globalization;
using System.Text;
using Matchlock.Guest.Interop;
using Matchlock.Guest.Processes;
using static Matchlock.Guest.Tests.ProcessTestSupport;
using Matchlock.Tests;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The spawner and reaper against real processes on the host: proves pipes, exit statuses,
/// signals to process groups and the early-exit race, without a VM.
/// </summary>
public sealed class SpawnerTests
{
    [Fact]
    public async Task Pipes_carry_stdout_and_stderr_separately_and_the_exit_code_comes_back()
    {
        using var child = NewSpawner().Spawn(Shell("echo out; echo err >&2; exit 3"));
        var (status, stdout, stderr) = await RunToEndAsync(child);
        Assert.Equal(("out\n", "err\n"), (stdout, stderr));
        Assert.Equal(ExitStatus.Exited(3), status);
    }

    [Fact]
    public async Task Stdin_pipe_reaches_the_command_and_closing_it_is_eof()
    {
        using var child = NewSpawner().Spawn(Shell("tr a-z A-Z") with { Stdin = true });
        var stdout = ReadAllAsync(child.Stdout);
        child.Stdin!.Write("hello\n"u8);
        child.Stdin.Dispose();
        Assert.Equal("HELLO\n", await stdout.WaitAsync(TestTimeout, TestContext.Current.CancellationToken));
        Assert.Equal(0, (await child.Exited.WaitAsync(TestTimeout, TestContext.Current.CancellationToken)).ExitCode);
    }

    [Fact]
    public async Task Without_stdin_the_command_reads_dev_null()
    {
        using var child = NewSpawner().Spawn(Shell("cat; readlink /proc/self/fd/0"));
        var (status, stdout, _) = await RunToEndAsync(child);
        Assert.Equal(("/dev/null\n", 0), (stdout, status.ExitCode));
    }

    [Fact]
    public async Task Child_sees_only_fds_0_1_2_and_leads_its_own_process_group()
    {
        // No shell: a shell's own pipes would show up. ls holds fd 3 for the directory it reads.
        using var ls = NewSpawner().Spawn(new SpawnSpec("/bin/ls", ["ls", "/proc/self/fd"], [], "/", Users.ExecUser.Root));
        Assert.Equal("0\n1\n2\n3\n", (await RunToEndAsync(ls)).Stdout);

        using var cat = NewSpawner().Spawn(new SpawnSpec("/bin/cat", ["cat", "/proc/self/stat"], [], "/", Users.ExecUser.Root));
        var stat = (await RunToEndAsync(cat)).Stdout;
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        Assert.Equal(cat.Pid, int.Parse(fields[2], CultureInfo.InvariantCulture)); // pgrp
    }

    [Fact]
    public async Task Signals_are_reported_as_signals_and_map_to_128_plus_n()
    {
        using var child = NewSpawner().Spawn(new SpawnSpec("/bin/sleep", ["sleep", "100"], [], "/", Users.ExecUser.Root));
        Assert.True(child.Signal(LibcConstants.SIGKILL));
        var status = await child.Exited.WaitAsync(TestTimeout, TestContext.Current.CancellationToken);
        Assert.Equal((null, 9, 137), (status.ExitCode, status.Signal, status.ShellCode));
        Assert.False(child.Signal(LibcConstants.SIGTERM)); // reaped: never signal a recycled pid
    }

    [Fact]
    public async Task Cancel_terminates_the_whole_process_group()
    {
        using var child = NewSpawner().Spawn(Shell("sleep 100 & echo $!; wait"));
        var line = new StringBuilder();
        var buffer = new byte[1];
        while (child.Stdout!.Read(buffer) == 1 && buffer[0] != '\n')
        {
            line.Append((char)buffer[0]);
        }

        var background = int.Parse(line.ToString(), CultureInfo.InvariantCulture);
        var status = await child.CancelAsync(TimeSpan.FromSeconds(5)).WaitAsync(TestTimeout, TestContext.Current.CancellationToken);
        Assert.Equal(LibcConstants.SIGTERM, status.Signal);
        await WaitUntil(() => IsDead(background));
    }

    [Fact]
    public async Task Cancel_escalates_to_sigkill_after_the_grace_period()
    {
        using var child = NewSpawner().Spawn(Shell("trap '' TERM; echo ready; while :; do sleep 0.05; done"));
        var buffer = new byte[6];
        child.Stdout!.ReadExactly(buffer);
        var status = await child.CancelAsync(TimeSpan.FromMilliseconds(300)).WaitAsync(TestTimeout, TestContext.Current.CancellationToken);
        Assert.Equal(LibcConstants.SIGKILL, status.Signal);
    }

    [Fact]
    public async Task Children_that_exit_immediately_are_never_lost()
    {
        // Many spawns at once: most children exit before posix_spawn has returned to us, which is
        // the race the reaper's early-exit table covers.
        var spawner = NewSpawner();
        async Task<(int Index, int? Code)> RunOne(int i)
        {
            await Task.Yield();
            using var child = spawner.Spawn(new SpawnSpec("/bin/sh", ["sh", "-c", $"exit {i % 7}"], [], "/", Users.ExecUser.Root));
            return (i, (await child.Exited.WaitAsync(TestTimeout, TestContext.Current.CancellationToken)).ExitCode);
        }

        var tasks = Enumerable.Range(0, 200).Select(RunOne).ToArray();
        foreach (var (i, code) in await Task.WhenAll(tasks))
        {
            Assert.Equal(i % 7, code);
        }
    }

    [Fact]
    public async Task Working_directory_and_environment_are_exactly_the_requested_ones()
    {
        var spec = new SpawnSpec("/usr/bin/env", ["env"], ["A=1", "B=two words"], "/tmp", Users.ExecUser.Root);
        using var child = NewSpawner().Spawn(spec);
        var (_, stdout, _) = await RunToEndAsync(child);
        Assert.Equal("A=1\nB=two words\n", stdout);

        using var pwd = NewSpawner().Spawn(Shell("pwd") with { WorkingDirectory = "/tmp" });
        Assert.Equal("/tmp\n", (await RunToEndAsync(pwd)).Stdout);
    }

    [Fact]
    public void A_missing_program_is_a_127_spawn_failure()
    {
        var error = Assert.Throws<SpawnException>(() => NewSpawner().Spawn(new SpawnSpec("/no/such/binary", ["x"], [], "/", Users.ExecUser.Root)));
        Assert.Equal((127, "exec: /no/such/binary: no such file or directory"), (error.ExitCode, error.Message));
    }

    private static Task WaitUntil(Func<bool> condition) => Eventually.Until(condition, TestTimeout, "the condition");
}
