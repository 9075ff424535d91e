using System.Diagnostics;
using System.Text.Json;

namespace Matchlock.Integration.Tests;

/// <summary>
/// The original CLI's outputs that need a running sandbox (issue 15; docs/COMPATIBILITY.md "CLI"), all
/// checked on one <c>run -d</c> sandbox: <c>get</c>/<c>inspect</c>/<c>stat</c> shapes (secrets by
/// name only), <c>log</c> (the command's output; <c>--console</c>; <c>-f</c> until it stops),
/// /etc/hosts, <c>exec -u</c> and the working-directory default, <c>--secret-file</c> and
/// <c>--secret-placeholder</c>, then <c>Killed ID</c> and <c>Removed ID</c>.
/// </summary>
public sealed class CliCompatibilityVmTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static readonly Dictionary<string, string> CallerEnv = new() { ["MATCHLOCK_TEST_SET_VARIABLE"] = "from-caller" };

    private Task<CliResult> Cli(params string[] args) => home.RunAsync(args, env: CallerEnv);

    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    [Fact]
    public async Task A_detached_sandbox_answers_get_inspect_log_exec_kill_and_rm_as_the_original()
    {
        VmPrerequisites.Ensure();
        var secretFile = Path.Combine(home.Root, "token.txt");
        await File.WriteAllTextAsync(secretFile, "value-from-file\n", TestContext.Current.CancellationToken);
        var run = await Cli(
            "run", "-d", "--image", "busybox", "--hostname", "box1", "--add-host", "db.test:10.0.0.5",
            "-e", "GREETING=hello", "-e", "MATCHLOCK_TEST_SET_VARIABLE",
            "--secret", "TOKEN=value-from-argv@api.test", "--secret-file", $"FILETOKEN={secretFile}@api.test",
            "--secret-placeholder", "FILETOKEN=MY_PLACEHOLDER",
            "--", "sh", "-c", "echo out-line; echo err-line >&2; echo $GREETING");
        Ok(run);
        var id = run.Stdout.Trim();
        Assert.Matches("^vm-[0-9a-f]{8}$", id);
        var killed = false;
        try
        {
            // get: the original's fields, the config with the caller's settings, secrets by name only.
            var get = await Cli("get", id);
            Ok(get);
            Assert.DoesNotContain("value-from", get.Stdout, StringComparison.Ordinal);
            using (var json = JsonDocument.Parse(get.Stdout))
            {
                var vm = json.RootElement;
                Assert.Equal(id, vm.GetProperty("id").GetString());
                Assert.Equal("running", vm.GetProperty("status").GetString());
                Assert.Equal("busybox", vm.GetProperty("image").GetString());
                Assert.True(vm.GetProperty("pid").GetInt32() > 0);
                Assert.True(vm.TryGetProperty("created_at", out _));
                var config = vm.GetProperty("config");
                Assert.Equal("busybox", config.GetProperty("image").GetString());
                Assert.Equal(1, config.GetProperty("cpus").GetDouble());
                Assert.Equal(512, config.GetProperty("memory_mb").GetInt32());
                Assert.Equal("hello", config.GetProperty("env").GetProperty("GREETING").GetString());
                Assert.Equal("from-caller", config.GetProperty("env").GetProperty("MATCHLOCK_TEST_SET_VARIABLE").GetString());
                Assert.Equal("/", config.GetProperty("workdir").GetString());
                Assert.Equal(["TOKEN", "FILETOKEN"], config.GetProperty("secrets").EnumerateArray().Select(e => e.GetString()));
            }

            // inspect and its alias stat: {vm, lifecycle, history}.
            foreach (var verb in new[] { "inspect", "stat" })
            {
                var inspect = await Cli(verb, id);
                Ok(inspect);
                Assert.DoesNotContain("value-from", inspect.Stdout, StringComparison.Ordinal);
                using var json = JsonDocument.Parse(inspect.Stdout);
                Assert.Equal(id, json.RootElement.GetProperty("vm").GetProperty("id").GetString());
                var lifecycle = json.RootElement.GetProperty("lifecycle");
                Assert.Equal(id, lifecycle.GetProperty("vm_id").GetString());
                Assert.Equal("running", lifecycle.GetProperty("phase").GetString());
                Assert.Contains(lifecycle.GetProperty("resources").EnumerateArray(), r => r.GetProperty("kind").GetString() == "netns");
                Assert.Equal(["creating", "running"], json.RootElement.GetProperty("history").EnumerateArray().Select(e => e.GetProperty("status").GetString()));
            }

            // The guest: /etc/hosts as the original writes it, exec -u, the working directory default, the secrets' placeholders.
            var hosts = await Cli("exec", id, "--", "cat", "/etc/hosts");
            Ok(hosts);
            Assert.Equal("127.0.0.1 localhost localhost.localdomain box1\n::1 localhost ip6-localhost ip6-loopback\n10.0.0.5 db.test\n", hosts.Stdout);
            var user = await Cli("exec", "-u", "nobody", id, "--", "id", "-u");
            Ok(user);
            Assert.Equal("65534\n", user.Stdout);
            Assert.Equal("/\n", (await Cli("exec", id, "--", "pwd")).Stdout);
            Assert.Equal("/tmp\n", (await Cli("exec", "-w", "/tmp", id, "--", "pwd")).Stdout);
            var placeholders = await Cli("exec", id, "--", "sh", "-c", "echo $FILETOKEN; echo $TOKEN");
            Ok(placeholders);
            Assert.Matches("^MY_PLACEHOLDER\nSANDBOX_SECRET_[0-9a-f]{32}\n$", placeholders.Stdout);

            // log: the command's output (stdout and stderr); --console: the guest console.
            var log = await Eventually(async () => await Cli("log", id), r => r.Stdout.Contains("hello\n", StringComparison.Ordinal));
            Ok(log);
            Assert.Contains("out-line\n", log.Stdout, StringComparison.Ordinal);
            Assert.Contains("err-line\n", log.Stdout, StringComparison.Ordinal);
            var console = await Cli("log", "--console", id);
            Ok(console);
            Assert.DoesNotContain("out-line", console.Stdout, StringComparison.Ordinal);

            // log -f follows until the sandbox stops; kill prints the original's line.
            var follow = home.Start(["log", "-f", id]);
            follow.StandardInput.Close();
            var followed = follow.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            await Task.Delay(500, TestContext.Current.CancellationToken);
            Assert.False(follow.HasExited, "log -f ended while the sandbox runs");
            var kill = await Cli("kill", id);
            killed = true;
            Ok(kill);
            Assert.Equal($"Killed {id}\n", kill.Stdout);
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                await follow.WaitForExitAsync(timeout.Token);
            }

            Assert.Equal(0, follow.ExitCode);
            Assert.Contains("hello\n", await followed, StringComparison.Ordinal);
        }
        finally
        {
            if (!killed)
            {
                await Cli("kill", id);
            }
        }

        var rm = await Cli("rm", id);
        Ok(rm);
        Assert.Equal($"Removed {id}\n", rm.Stdout);
        home.AssertNothingLeft();
    }

    private static async Task<CliResult> Eventually(Func<Task<CliResult>> run, Func<CliResult, bool> done)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var r = await run();
            if (done(r) || clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                return r;
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }
}
