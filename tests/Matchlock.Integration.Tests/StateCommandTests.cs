using System.Diagnostics;
using System.Text.Json;

namespace Matchlock.Integration.Tests;

/// <summary>
/// The state commands against real runs (docs/ARCHITECTURE.md D9): every run is in state.db while it lives, a
/// killed owner shows as crashed, and <c>prune</c>/<c>rm</c> release what it held, then forget it.
/// </summary>
public sealed class StateCommandTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_running_vm_is_listed_shows_crashed_when_its_cli_is_killed_and_prune_leaves_nothing()
    {
        VmPrerequisites.Ensure();
        var (cli, run, vmId) = await home.StartSleepingRunAsync();

        var running = await home.RunAsync(["ls", "--running"]);
        Assert.True(running.ExitCode == 0, running.ToString());
        Assert.Matches($@"{vmId}\s+running\s+busybox\s+\S+ \S+\s+{cli.Id}", running.Stdout);

        Assert.Equal(0, Interop.Kill(cli.Id, 9));
        await run;
        var listed = await home.RunAsync(["ls"]);
        Assert.Matches($@"{vmId}\s+crashed\s", listed.Stdout);
        Assert.DoesNotContain(vmId, (await home.RunAsync(["ls", "--running"])).Stdout, StringComparison.Ordinal);

        var prune = await home.RunAsync(["prune"]);
        Assert.True(prune.ExitCode == 0, prune.ToString());
        Assert.Equal($"Pruned {vmId}\nPruned 1 VMs\n", prune.Stdout);
        Assert.DoesNotContain(vmId, (await home.RunAsync(["ls"])).Stdout, StringComparison.Ordinal);
        home.AssertNothingLeft();
        Assert.False(File.Exists("/var/run/netns/matchlock-" + vmId), "prune left the network namespace");
    }

    [Fact]
    public async Task A_failed_start_leaves_no_record()
    {
        VmPrerequisites.Ensure();

        // Static busybox as /init boots but never speaks our protocol: the start fails and is cleaned up.
        var r = await home.RunAsync(
            ["run", "--image", "busybox", "--", "true"],
            env: new Dictionary<string, string> { ["MATCHLOCK_GUEST_BIN"] = "/bin/busybox", ["MATCHLOCK_BOOT_TIMEOUT"] = "5" },
            timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 125, r.ToString());

        var listed = await home.RunAsync(["ls"]);
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.DoesNotContain("vm-", listed.Stdout, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task A_detached_vm_is_running_with_its_history_stopped_once_killed_and_gone_after_rm()
    {
        VmPrerequisites.Ensure();
        var r = await home.RunAsync(["run", "-d", "--image", "busybox"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, r.ToString());
        var vmId = r.Stdout.Trim();

        var inspect = await home.RunAsync(["inspect", vmId]);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        using (var json = JsonDocument.Parse(inspect.Stdout))
        {
            Assert.Equal("running", json.RootElement.GetProperty("vm").GetProperty("status").GetString());
            Assert.Equal(
                ["creating", "running"],
                json.RootElement.GetProperty("history").EnumerateArray().Select(e => e.GetProperty("status").GetString()));
        }

        Assert.Contains(vmId, (await home.RunAsync(["ls", "--running"])).Stdout, StringComparison.Ordinal);
        // A running VM's owner holds it: rm refuses rather than pulling it from under the owner.
        Assert.NotEqual(0, (await home.RunAsync(["rm", vmId])).ExitCode);

        var unknown = await home.RunAsync(["get", "vm-00000000"]);
        Assert.True(unknown.ExitCode == 125, unknown.ToString());
        Assert.Contains("VM vm-00000000 not found", unknown.Stderr, StringComparison.Ordinal);

        Assert.Equal(125, (await home.RunAsync(["kill"])).ExitCode); // ids or --all
        var kill = await home.RunAsync(["kill", "--all"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(kill.ExitCode == 0, kill.ToString());
        Assert.Equal($"Killed {vmId}", kill.Stdout.Trim());

        // Stopped and kept (logs, history) until rm, as docker keeps a stopped container.
        Assert.DoesNotContain(vmId, (await home.RunAsync(["ls", "--running"])).Stdout, StringComparison.Ordinal);
        Assert.Matches($"(?m)^{vmId}\\s+stopped\\s", (await home.RunAsync(["ls"])).Stdout);
        Assert.Empty(home.QemuProcesses());
        var rm = await home.RunAsync(["rm", "--stopped"]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Contains($"Removed {vmId}\n", rm.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(vmId, (await home.RunAsync(["ls"])).Stdout, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }
}
