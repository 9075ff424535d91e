using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Matchlock.Integration.Tests;

/// <summary>
/// `matchlock run` end to end: the installed CLI boots real microVMs from the imported base image.
/// Proves exit status, stream separation, data integrity, stdin, env/workdir/user/entrypoint
/// semantics, CPU quota, timeout, concurrency and that nothing is left behind.
/// </summary>
public sealed class RunCommandTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<CliResult> Run(params string[] args)
    {
        VmPrerequisites.Ensure();
        return await home.RunAsync(["run", "--image", "busybox", .. args]);
    }

    [Fact]
    public async Task Echo_prints_hello_and_exits_zero()
    {
        var r = await Run("--", "echo", "hello");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("hello\n", r.Stdout);
        home.AssertNothingLeft();
    }

    [Theory]
    [InlineData("exit 0", 0)]
    [InlineData("exit 3", 3)]
    [InlineData("kill -9 $$", 137)]
    public async Task The_commands_exit_status_is_matchlocks_exit_status(string script, int expected)
    {
        var r = await Run("--", "sh", "-c", script);
        Assert.True(r.ExitCode == expected, r.ToString());
    }

    [Fact]
    public async Task Stdout_and_stderr_are_kept_apart()
    {
        var r = await Run("--", "sh", "-c", "echo out; echo err >&2; echo out2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("out\nout2\n", r.Stdout);
        Assert.Contains("err\n", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("out", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hundred_megabytes_of_output_arrive_intact()
    {
        VmPrerequisites.Ensure();
        const int size = 100_000_000;
        using var sink = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var hashing = new HashingStream(sink);
        var r = await home.RunAsync(["run", "--image", "busybox", "--", "sh", "-c", $"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size}"], timeout: TimeSpan.FromMinutes(4), stdoutSink: hashing);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(size, hashing.Length);

        var line = Encoding.ASCII.GetBytes("0123456789abcdefghijklmnopqrstuvwxyz\n");
        using var expected = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long done = 0; done < size; done += line.Length)
        {
            expected.AppendData(line, 0, (int)Math.Min(line.Length, size - done));
        }

        Assert.Equal(expected.GetHashAndReset(), sink.GetHashAndReset());
    }

    [Fact]
    public async Task Stdin_is_piped_through_with_dash_i()
    {
        VmPrerequisites.Ensure();
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        var r = await home.RunAsync(["run", "-i", "--image", "busybox", "--", "sh", "-c", "wc -c; "], new MemoryStream(data));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Stdout.Trim());

        var hash = await home.RunAsync(["run", "-i", "--image", "busybox", "--", "sha256sum"], new MemoryStream(data));
        Assert.StartsWith(Convert.ToHexStringLower(SHA256.HashData(data)), hash.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_dash_i_the_command_reads_no_stdin()
    {
        VmPrerequisites.Ensure();
        var r = await home.RunAsync(["run", "--image", "busybox", "--", "wc", "-c"], new MemoryStream(new byte[1000]));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("0", r.Stdout.Trim());
    }

    [Fact]
    public async Task Env_workdir_and_hostname_flags_apply()
    {
        var envFile = Path.Combine(home.Root, "test.env");
        await File.WriteAllTextAsync(envFile, "# comment\nFROM_FILE=file value\nOVERRIDDEN=from-file\n", Ct);
        var r = await Run("-e", "A=1", "-e", "OVERRIDDEN=from-flag", "--env-file", envFile, "-w", "/tmp", "--hostname", "box1",
            "--", "sh", "-c", "echo \"$A|$FROM_FILE|$OVERRIDDEN|$PATH\"; pwd; hostname");
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n');
        Assert.Equal("1|file value|from-flag|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", lines[0]);
        Assert.Equal("/tmp", lines[1]);
        Assert.Equal("box1", lines[2]);
    }

    [Fact]
    public async Task A_missing_workdir_is_created_as_docker_run_does()
    {
        var r = await Run("-w", "/new/work/dir", "--", "sh", "-c", "pwd; stat -c '%a %U' .");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("/new/work/dir\n755 root\n", r.Stdout);
    }

    [Fact]
    public async Task User_flag_accepts_uid_uid_gid_and_names()
    {
        var byName = await Run("-u", "user", "--", "id");
        Assert.True(byName.ExitCode == 0, byName.ToString());
        Assert.StartsWith("uid=1000(user) gid=1000(user)", byName.Stdout, StringComparison.Ordinal);

        var byIds = await Run("-u", "65534:65534", "--", "sh", "-c", "id -u; id -g; echo $HOME");
        Assert.Equal("65534\n65534\n", byIds.Stdout[..12]);

        var unknown = await Run("-u", "nosuchuser", "--", "id");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("nosuchuser", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Entrypoint_override_and_image_cmd_follow_docker_semantics()
    {
        var entry = await Run("--entrypoint", "echo", "--", "from", "entrypoint");
        Assert.Equal("from entrypoint\n", entry.Stdout);

        // No command: the image's CMD (["sh"]) runs and reads the piped script.
        VmPrerequisites.Ensure();
        var cmd = await home.RunAsync(["run", "-i", "--image", "busybox"], new MemoryStream("echo ran-cmd\n"u8.ToArray()));
        Assert.True(cmd.ExitCode == 0, cmd.ToString());
        Assert.Equal("ran-cmd\n", cmd.Stdout);
    }

    [Fact]
    public async Task Fractional_cpus_become_a_cgroup_quota_in_the_guest()
    {
        var r = await Run("--cpus", "0.5", "--", "sh", "-c", "cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/cpu.max; nproc");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("50000 100000\n1\n", r.Stdout);
    }

    [Fact]
    public async Task Timeout_stops_the_command_with_status_124()
    {
        var clock = Stopwatch.StartNew();
        var r = await Run("--timeout", "3", "--", "sleep", "120");
        Assert.True(r.ExitCode == 124, r.ToString());
        Assert.Contains("--timeout", r.Stderr, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Four_vms_run_at_once()
    {
        VmPrerequisites.Ensure();
        var runs = Enumerable.Range(0, 4).Select(i => home.RunAsync(["run", "--image", "busybox", "--", "sh", "-c", $"echo vm{i} $(hostname)"], timeout: TimeSpan.FromMinutes(3)));
        var results = await Task.WhenAll(runs);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(results[i].ExitCode == 0, results[i].ToString());
            Assert.Matches($"^vm{i} vm-[0-9a-f]{{8}}\n$", results[i].Stdout);
        }

        Assert.Equal(4, results.Select(r => r.Stdout.Split(' ')[1]).Distinct().Count());
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Ctrl_c_at_the_terminal_reaches_the_command_in_the_guest()
    {
        VmPrerequisites.Ensure();
        var started = new TaskCompletionSource();
        var stdout = new SignalingStream("started", started);
        Process? cli = null;
        var run = home.RunAsync(["run", "--image", "busybox", "--", "sh", "-c", "trap 'echo got-int; exit 42' INT; echo started; while true; do sleep 1; done"],
            started: p => cli = p, stdoutSink: stdout);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(90), Ct);

        // A terminal's Ctrl-C signals the whole foreground process group, not just matchlock:
        // the VMM must not be in it, or it dies instead of the signal reaching the guest.
        Assert.Equal(0, Interop.Kill(-cli!.Id, 2));
        var r = await run;
        Assert.True(r.ExitCode == 42, r.ToString());
        Assert.Contains("got-int", stdout.Text, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task A_killed_cli_leaves_no_vm_behind()
    {
        VmPrerequisites.Ensure();
        var (cli, run, vmId) = await home.StartSleepingRunAsync();
        var netns = "/var/run/netns/matchlock-" + vmId;
        Assert.True(File.Exists(netns), $"the run's network namespace {netns} should exist while it runs");
        Assert.Equal(0, Interop.Kill(cli.Id, 9));
        await run;

        // The guest sees its host go away and powers off; QEMU exits with it.
        var deadline = Stopwatch.StartNew();
        while (home.QemuProcesses().Count > 0 && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(250, Ct);
        }

        Assert.Empty(home.QemuProcesses());

        // The next run sweeps the dead owner's directory and its network namespace (tap and
        // nftables table live inside it and go with it).
        var next = await Run("--", "true");
        Assert.True(next.ExitCode == 0, next.ToString());
        home.AssertNothingLeft();
        Assert.False(File.Exists(netns), $"{netns} was left behind by the killed run");
    }

    [Theory]
    [InlineData("--allow-host", "api.example.com")]
    [InlineData("--secret", "TOKEN=x@api.example.com")]
    [InlineData("--network-intercept", null)]
    [InlineData("--allow-tcp", "github.com:22")]
    public async Task No_network_conflicts_with_network_policy_flags(string flag, string? value)
    {
        VmPrerequisites.Ensure();
        var r = await home.RunAsync(["run", "--image", "busybox", "--no-network", flag, .. (value is null ? Array.Empty<string>() : [value]), "--", "true"]);
        Assert.True(r.ExitCode == 125, r.ToString());
        Assert.Contains("--no-network", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("=x@", r.Stderr, StringComparison.Ordinal); // a secret's value is never echoed
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Unknown_image_lists_what_exists_and_leaves_nothing()
    {
        VmPrerequisites.Ensure();
        // Not stored, so run pulls it: from a loopback port nothing listens on (tests never reach the internet).
        var r = await home.RunAsync(["run", "--image", "127.0.0.1:9/nosuch:1.0", "--", "true"]);
        Assert.Equal(125, r.ExitCode);
        Assert.Contains("127.0.0.1:9/nosuch:1.0", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("not stored locally", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("busybox:latest", r.Stderr, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }

    [Theory]
    [InlineData("--cpus", "0")]
    [InlineData("--cpus", "999")]
    [InlineData("--memory", "1")]
    [InlineData("--memory", "lots")]
    [InlineData("--timeout", "-5")]
    [InlineData("--accel", "warp")]
    [InlineData("--mtu", "100")]
    [InlineData("--add-host", "no-address")]
    [InlineData("--add-host", "api.test:not-an-ip")]
    [InlineData("--dns-servers", "dns.example")]
    [InlineData("--secret", "TOKEN")]
    [InlineData("--upstream-ca", "/nonexistent/ca.pem")]
    [InlineData("--allow-tcp", "github.com")]
    [InlineData("--allow-tcp", "github.com:ssh")]
    [InlineData("--allow-tcp", "github.com:70000")]
    [InlineData("--allow-tcp", "bad host:22")]
    [InlineData("--log-level", "chatty")]
    [InlineData("--allow-host", "bad_host!")]
    [InlineData("--add-host", "bad~host:10.0.0.1")]
    [InlineData("--secret", "MATCHLOCK_TEST_UNSET_VARIABLE@api.test")]
    [InlineData("--secret", "TOKEN=x@bad host")]
    public async Task Bad_flag_values_fail_with_a_message_and_status_125(string flag, string value)
    {
        VmPrerequisites.Ensure();
        var r = await home.RunAsync(["run", "--image", "busybox", flag, value, "--", "true"]);
        Assert.True(r.ExitCode == 125, r.ToString());
        Assert.Contains(flag, r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }
}
