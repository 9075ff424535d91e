using Matchlock.Core.Interop;
using Matchlock.Core.Owner;
using Matchlock.Tests;

namespace Matchlock.Integration.Tests;

/// <summary>
/// Reconciliation and scale of long-lived sandboxes (docs/ARCHITECTURE.md D9): <c>gc</c> releases what a dead
/// owner left while keeping its record and log until <c>rm</c>, <c>--force-running</c> reclaims a
/// live one, and ten sandboxes alive at once are each listed, reachable and stopped.
/// </summary>
public sealed class LifecycleTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    [Fact]
    public async Task Gc_releases_a_dead_owners_vm_keeping_its_log_until_rm_and_force_running_reclaims_a_live_one()
    {
        VmPrerequisites.Ensure();
        var crashed = await StartAsync();
        var crashedPid = home.OwnerPid(crashed);
        Assert.Equal(0, Interop.Kill(crashedPid, 9));
        await WaitAsync(() => home.QemuProcesses().Count == 0, "QEMU to follow its SIGKILLed owner");
        // QEMU's parent-death signal fires when the owner's thread dies, which can be before the
        // whole owner process has exited: wait for the owner too, or ls may still see it alive.
        await WaitAsync(() => !Matchlock.Core.Interop.OwnerNative.IsAlive(crashedPid), "the SIGKILLed owner to be gone");
        Assert.Matches($@"(?m)^{crashed}\s+crashed\s", (await home.RunAsync(["ls"])).Stdout);
        Assert.True(File.Exists(Netns(crashed)), "the dead owner's namespace is what gc must release");

        var gc = await home.RunAsync(["gc", crashed]);
        Assert.True(gc.ExitCode == 0, gc.ToString());
        Assert.Equal(crashed + "\n", gc.Stdout);
        Assert.False(File.Exists(Netns(crashed)), "gc left the network namespace");
        Assert.False(File.Exists(Path.Combine(home.VmsDir, crashed, "upper.ext4")), "gc left the writable disk");
        Assert.Matches($@"(?m)^{crashed}\s+cleaned\s", (await home.RunAsync(["ls"])).Stdout);
        var log = await home.RunAsync(["log", "--console", crashed]);
        Assert.True(log.ExitCode == 0 && log.Stdout.Length > 0, log.ToString()); // kept for a post-mortem

        var live = await StartAsync();
        var refused = await home.RunAsync(["gc", live]);
        Assert.True(refused.ExitCode == 125, refused.ToString());
        Assert.Contains("--force-running", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, (await home.RunAsync(["exec", live, "--", "true"])).ExitCode); // untouched

        var forced = await home.RunAsync(["gc", "--force-running", live]);
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.False(OwnerNative.IsAlive(home.OwnerPid(live)), "the hung-owner path must kill the owner");
        Assert.False(File.Exists(Netns(live)), "gc --force-running left the network namespace");
        Assert.Empty(home.QemuProcesses());

        var rm = await home.RunAsync(["rm", crashed, live]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        var ls = (await home.RunAsync(["ls"])).Stdout;
        Assert.DoesNotContain(crashed, ls, StringComparison.Ordinal);
        Assert.DoesNotContain(live, ls, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Ten_sandboxes_alive_at_once_are_all_listed_reachable_and_stopped()
    {
        VmPrerequisites.Ensure();
        var ids = new List<string>();
        try
        {
            // Two boots at a time: the machine has two CPUs and each boot is software-emulated.
            for (var i = 0; i < 10; i += 2)
            {
                ids.AddRange(await Task.WhenAll(StartAsync(), StartAsync()));
            }

            var ls = await home.RunAsync(["ls", "--running"]);
            Assert.True(ls.ExitCode == 0, ls.ToString());
            foreach (var id in ids)
            {
                Assert.Matches($@"(?m)^{id}\s+running\s+busybox\s+\S+ \S+\s+{home.OwnerPid(id)}$", ls.Stdout);
            }

            Assert.Equal(10, ls.Stdout.Split('\n').Count(l => l.StartsWith("vm-", StringComparison.Ordinal)));
            var names = await Task.WhenAll(ids.Select(id => home.RunAsync(["exec", id, "--", "hostname"])));
            for (var i = 0; i < ids.Count; i++)
            {
                Assert.True(names[i].ExitCode == 0 && names[i].Stdout == ids[i] + "\n", $"exec hostname in {ids[i]}: {names[i]}");
            }
        }
        finally
        {
            var kill = await home.RunAsync(["kill", .. ids], timeout: TimeSpan.FromMinutes(3));
            Assert.True(kill.ExitCode == 0, kill.ToString());
        }

        Assert.Empty(home.QemuProcesses());
        var stopped = (await home.RunAsync(["ls"])).Stdout;
        Assert.All(ids, id => Assert.Matches($@"(?m)^{id}\s+stopped\s", stopped));
        Assert.Equal(0, (await home.RunAsync(["rm", .. ids])).ExitCode);
        home.AssertNothingLeft();
        Assert.All(ids, id => Assert.False(File.Exists(Netns(id)), $"{id}'s network namespace was left behind"));
    }

    private async Task<string> StartAsync()
    {
        var run = await home.RunAsync(["run", "-d", "--image", "busybox", "--memory", "128"], timeout: TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.ToString());
        return run.Stdout.Trim();
    }

    private static string Netns(string id) => "/var/run/netns/matchlock-" + id;

    private static Task WaitAsync(Func<bool> condition, string what) => Eventually.Until(condition, TimeSpan.FromSeconds(30), what);
}
