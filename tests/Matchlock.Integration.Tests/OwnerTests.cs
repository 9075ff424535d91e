using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Matchlock.Core.Interop;
using Matchlock.Core.Owner;

namespace Matchlock.Integration.Tests;

/// <summary>
/// Long-lived sandboxes end to end (docs/ARCHITECTURE.md D9): <c>run -d</c> and <c>run --rm=false</c> own a VM
/// and serve its control socket; <c>exec</c>, <c>allow-list</c> and <c>kill</c> drive it. Proves
/// streams and exit statuses through the owner, concurrent execs, the allow-list change and its
/// printout, graceful stop on SIGTERM, and that nothing (QEMU, VM directory, netns) is left.
/// Two VM boots in all.
/// </summary>
public sealed class OwnerTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string SecretValue = "owner-secret-value-4e1f9a";

    private Task<CliResult> Exec(string id, params string[] command) => home.RunAsync(["exec", id, "--", .. command]);

    [Fact]
    public async Task Detached_sandbox_serves_exec_and_allow_list_until_killed()
    {
        VmPrerequisites.Ensure();

        // The caller holds a descriptor it did not mark close-on-exec (a lock, a pipe): the owner,
        // which outlives the caller, must not keep it.
        var inherited = Path.Combine(home.Root, "inherited-" + Guid.NewGuid().ToString("N")[..8]);
        var fd = Interop.OpenInheritable(inherited);
        CliResult run;
        try
        {
            // A secret and debug logging: no log, record or file under the home may ever hold its value.
            run = await home.RunAsync(
                ["run", "-d", "--log-level", "debug", "--image", "busybox", "--network-intercept", "--secret", $"OWNER_TEST_TOKEN={SecretValue}@secret.example.net"],
                timeout: TimeSpan.FromMinutes(2));
        }
        finally
        {
            Interop.Close(fd);
        }

        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.Stdout.Trim();
        Assert.Matches("^vm-[0-9a-f]{8}$", id);
        Assert.Contains($"matchlock kill {id}", run.Stderr, StringComparison.Ordinal);
        var vmDir = Path.Combine(home.VmsDir, id);
        var ownerPid = home.OwnerPid(id);
        var killed = false;
        try
        {
            var held = Directory.EnumerateFileSystemEntries($"/proc/{ownerPid}/fd")
                .Select(f => new FileInfo(f).LinkTarget).Where(t => t == inherited).ToList();
            Assert.True(held.Count == 0, $"the detached owner kept its caller's descriptor for {inherited}");

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(vmDir, "control.sock")));

            var first = await Exec(id, "sh", "-c", "echo out; echo err >&2; exit 3");
            Assert.True(first.ExitCode == 3, first.ToString());
            Assert.Equal("out\n", first.Stdout);
            Assert.Contains("err\n", first.Stderr, StringComparison.Ordinal);

            // Same VM across execs: a file written by one is read by the next.
            Assert.Equal(0, (await Exec(id, "sh", "-c", "echo kept > /tmp/f")).ExitCode);
            var read = await Exec(id, "cat", "/tmp/f");
            Assert.True(read.ExitCode == 0, read.ToString());
            Assert.Equal("kept\n", read.Stdout);

            var data = RandomNumberGenerator.GetBytes(300_001);
            var wc = await home.RunAsync(["exec", "-i", id, "--", "wc", "-c"], new MemoryStream(data));
            Assert.True(wc.ExitCode == 0, wc.ToString());
            Assert.Equal("300001", wc.Stdout.Trim());

            var missing = await Exec(id, "no-such-command");
            Assert.True(missing.ExitCode == 127, missing.ToString());

            // Concurrent: each waits for the other's marker, so both must run at the same time.
            const string wait = "touch /tmp/{0}; i=0; while [ ! -e /tmp/{1} ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done; echo {0}";
            var a = Exec(id, "sh", "-c", string.Format(CultureInfo.InvariantCulture, wait, "a", "b"));
            var b = Exec(id, "sh", "-c", string.Format(CultureInfo.InvariantCulture, wait, "b", "a"));
            var (ra, rb) = (await a, await b);
            Assert.True(ra.ExitCode == 0, ra.ToString());
            Assert.True(rb.ExitCode == 0, rb.ToString());
            Assert.Equal("a\n", ra.Stdout);
            Assert.Equal("b\n", rb.Stdout);

            var add = await home.RunAsync(["allow-list", "add", id, "example.com,api.example.org"]);
            Assert.True(add.ExitCode == 0, add.ToString());
            Assert.Equal($"Added to {id}: example.com,api.example.org\nCurrent allow-list: secret.example.net,example.com,api.example.org\n", add.Stdout); // a secret's host is on the list from the start
            var delete = await home.RunAsync(["allow-list", "delete", id, "example.com"]);
            Assert.True(delete.ExitCode == 0, delete.ToString());
            Assert.Equal($"Removed from {id}: example.com\nCurrent allow-list: secret.example.net,api.example.org\n", delete.Stdout);

            // Another user: the 0700 VM directory stops it; and were the socket reachable, the
            // owner's SO_PEERCRED check closes the connection unanswered.
            var nobody = await AsNobody(["exec", id, "--", "true"]);
            Assert.True(nobody.ExitCode == 125, nobody.ToString());
            Assert.Contains("belongs to another user", nobody.Stderr, StringComparison.Ordinal);
            var socket = Path.Combine(vmDir, "control.sock");
            File.SetUnixFileMode(vmDir, (UnixFileMode)0b111_101_101);
            File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
            try
            {
                var refused = await AsNobody(["exec", id, "--", "sh", "-c", "echo ran"]);
                Assert.True(refused.ExitCode == 125, refused.ToString());
                Assert.DoesNotContain("ran", refused.Stdout, StringComparison.Ordinal);
                Assert.Contains("closed the connection", refused.Stderr, StringComparison.Ordinal);
            }
            finally
            {
                File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                File.SetUnixFileMode(vmDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var unknown = await Exec("vm-00000000", "true");
            Assert.True(unknown.ExitCode == 125, unknown.ToString());
            Assert.Contains("sandbox vm-00000000 not found", unknown.Stderr, StringComparison.Ordinal);

            var kill = await home.RunAsync(["kill", id]);
            killed = true;
            Assert.True(kill.ExitCode == 0, kill.ToString());
            Assert.Equal($"Killed {id}\n", kill.Stdout);
        }
        finally
        {
            if (!killed && OwnerNative.IsAlive(ownerPid))
            {
                Interop.Kill(ownerPid, 15); // a failed assertion must not leave the owner (not ours to track otherwise)
            }
        }

        await WaitGoneAsync(ownerPid);
        Assert.False(File.Exists("/var/run/netns/matchlock-" + id), "the sandbox's network namespace was left behind");
        Assert.Empty(home.QemuProcesses());

        // The owner's log says what it did (and survived), bounded, in the VM directory kept until rm.
        var ownerLog = await File.ReadAllTextAsync(Path.Combine(vmDir, "owner.log"), Ct);
        Assert.Contains("Matchlock.Owner[1000] serving the control socket", ownerLog, StringComparison.Ordinal);
        Assert.Contains("Matchlock.Sandbox[1100] sandbox " + id + " is running", ownerLog, StringComparison.Ordinal);
        Assert.Contains("control request exec", ownerLog, StringComparison.Ordinal);
        Assert.Contains("stopping: matchlock kill", ownerLog, StringComparison.Ordinal);
        Assert.Contains("released", ownerLog, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(vmDir, "owner.log")));
        var grep = Process.Start(new ProcessStartInfo("grep", ["-r", "-l", "-a", "-F", SecretValue, home.Root]) { RedirectStandardOutput = true })!;
        var holders = await grep.StandardOutput.ReadToEndAsync(Ct);
        await grep.WaitForExitAsync(Ct);
        Assert.True(holders.Length == 0, "the secret's value was written to: " + holders);

        // Stopped, kept for its logs until rm: exec says so.
        var after = await Exec(id, "true");
        Assert.True(after.ExitCode == 125, after.ToString());
        Assert.Contains($"sandbox {id} is not running", after.Stderr, StringComparison.Ordinal);
        var rm = await home.RunAsync(["rm", id]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Foreground_owner_stops_on_sigterm_giving_commands_the_graceful_shutdown()
    {
        VmPrerequisites.Ensure();
        using var owner = home.Start(["run", "--rm=false", "--graceful-shutdown", "3s", "--image", "busybox"]);
        owner.StandardInput.Close();
        var stdout = owner.StandardOutput.ReadToEndAsync(Ct);
        string? id = null;
        var stderr = new System.Text.StringBuilder();
        using (var boot = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            boot.CancelAfter(TimeSpan.FromMinutes(2));
            while (await owner.StandardError.ReadLineAsync(boot.Token) is { } line)
            {
                stderr.AppendLine(line);
                if (line.StartsWith("connect: matchlock exec ", StringComparison.Ordinal))
                {
                    id = line.Split(' ')[3];
                    break;
                }
            }
        }

        Assert.True(id is not null, "no connect hint; stderr: " + stderr);
        var restOfStderr = owner.StandardError.ReadToEndAsync(Ct);

        // One command ends on SIGTERM (trap → 7); one ignores it and is killed when the grace is over.
        var polite = Exec(id, "sh", "-c", "trap 'echo got-term; exit 7' TERM; touch /tmp/p; sleep 100 & wait");
        var stubborn = Exec(id, "sh", "-c", "trap '' TERM; touch /tmp/s; sleep 100");
        var both = Stopwatch.StartNew();
        while ((await Exec(id, "sh", "-c", "[ -e /tmp/p ] && [ -e /tmp/s ]")).ExitCode != 0)
        {
            Assert.True(both.Elapsed < TimeSpan.FromSeconds(60), "the two commands did not start");
            await Task.Delay(200, Ct);
        }

        var stopping = Stopwatch.StartNew();
        Assert.Equal(0, Interop.Kill(owner.Id, 15));
        var p = await polite;
        var s = await stubborn;
        await owner.WaitForExitAsync(Ct);
        Assert.True(owner.ExitCode == 0, $"owner exit {owner.ExitCode}; stderr: {stderr}{await restOfStderr}");
        Assert.True(p.ExitCode == 7, p.ToString());
        Assert.Equal("got-term\n", p.Stdout);
        Assert.True(s.ExitCode == 137, s.ToString());
        Assert.True(stopping.Elapsed >= TimeSpan.FromSeconds(2.5), $"the stubborn command was killed after {stopping.Elapsed}, before the 3 s grace");
        Assert.Equal("", await stdout);

        Assert.Equal(0, (await home.RunAsync(["rm", id])).ExitCode);
        home.AssertNothingLeft();
        Assert.False(File.Exists("/var/run/netns/matchlock-" + id), "the sandbox's network namespace was left behind");
    }

    /// <summary>The CLI as uid/gid 65534 (setpriv, util-linux), with this home.</summary>
    private async Task<CliResult> AsNobody(string[] args)
    {
        var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["--reuid=65534", "--regid=65534", "--clear-groups", VmPrerequisites.MatchlockBin, .. args])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["MATCHLOCK_HOME"] = home.Root;
        psi.Environment["HOME"] = "/tmp";
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, System.Text.Encoding.UTF8.GetBytes(await stdout), await stderr);
    }

    private static async Task WaitGoneAsync(int pid)
    {
        var deadline = Stopwatch.StartNew();
        while (OwnerNative.IsAlive(pid) && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100, Ct);
        }

        Assert.False(OwnerNative.IsAlive(pid), $"the owner (PID {pid}) is still running after kill");
    }
}
