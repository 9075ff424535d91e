using System.Text.Json;

namespace Matchlock.Integration.Tests;

/// <summary>
/// The original CLI's words, refusals and exit codes that need no VM (issue 15; docs/COMPATIBILITY.md
/// "CLI"), through the real binary over a private home. Refusals exit 125 and create nothing; the
/// image named is a loopback registry nothing listens on, so a refusal that did not fire could
/// never reach the network.
/// </summary>
public sealed class CliCompatibilityTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private const string NoImage = "127.0.0.1:9/never:1";

    private async Task<CliResult> Cli(params string[] args)
    {
        if (!File.Exists(VmPrerequisites.MatchlockBin))
        {
            HostPrerequisites.SkipOrFail($"{VmPrerequisites.MatchlockBin} is missing (./test.sh publishes it, or set MATCHLOCK_BIN)");
        }

        Directory.CreateDirectory(home.Root);
        return await home.RunAsync(args, env: new Dictionary<string, string> { ["MATCHLOCK_TEST_SET_VARIABLE"] = "set" });
    }

    private void Refused(CliResult r, string expected)
    {
        Assert.True(r.ExitCode == 125, r.ToString());
        Assert.Contains(expected, r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.Equal("", r.Stdout);
        Assert.False(Directory.Exists(home.VmsDir) && Directory.EnumerateFileSystemEntries(home.VmsDir).Any(), "a refused command created a VM directory");
    }

    [Theory]
    [InlineData("--detach cannot be combined with -i/-t", "-d", "-i")]
    [InlineData("--detach cannot be combined with -i/-t", "-d", "-t")]
    [InlineData("--detach cannot be combined with -i/-t", "-d", "-it")]
    [InlineData("invalid environment variable MATCHLOCK_TEST_UNSET_VARIABLE", "-e", "MATCHLOCK_TEST_UNSET_VARIABLE")]
    [InlineData("invalid add-host mapping", "--add-host", "no-address")]
    [InlineData("invalid add-host mapping", "--add-host", "api.test:not-an-ip")]
    [InlineData("invalid add-host mapping", "--add-host", "bad~host:10.0.0.1")]
    [InlineData("MATCHLOCK_TEST_UNSET_VARIABLE", "--secret", "MATCHLOCK_TEST_UNSET_VARIABLE@api.test")]
    [InlineData("unknown flag: --bogus", "--bogus")]
    [InlineData("unknown flag: -n", "echo", "-n", "hi")]
    [InlineData("--secret-file", "--secret-file", "TOKEN=/nonexistent/token@api.test")]
    [InlineData("--secret-file", "--secret-file", "TOKEN@api.test")]
    [InlineData("not one of the secrets", "--secret-placeholder", "OTHER=PLACEHOLDER")]
    public async Task Run_refuses_bad_usage_with_125_before_creating_anything(string expected, params string[] flags)
    {
        Refused(await Cli(["run", "--image", NoImage, .. flags, "--", "true"]), expected);
    }

    [Fact]
    public async Task A_bare_env_name_that_is_set_is_not_refused_and_flags_after_the_double_dash_are_the_commands()
    {
        // Both get past the checks to the image lookup, which fails on the loopback registry.
        var set = await Cli("run", "--image", NoImage, "-e", "MATCHLOCK_TEST_SET_VARIABLE", "--", "echo", "-n", "--bogus");
        Assert.True(set.ExitCode == 125, set.ToString());
        Assert.Contains(NoImage, set.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("unknown flag", set.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("invalid environment variable", set.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ids_are_required_and_unknown_ones_are_not_found()
    {
        Refused(await Cli("kill"), "VM ID required");
        Refused(await Cli("rm"), "VM ID required");
        Refused(await Cli("kill", "--bogus"), "unknown flag: --bogus");
        Refused(await Cli("exec", "vm-00000000", "-u", "nobody", "-e", "MATCHLOCK_TEST_UNSET_VARIABLE", "--", "true"), "invalid environment variable");
        foreach (var args in new[] { new[] { "get", "vm-00000000" }, ["inspect", "vm-00000000"], ["stat", "vm-00000000"], ["log", "vm-00000000"], ["kill", "vm-00000000"], ["rm", "vm-00000000"], ["exec", "vm-00000000", "--", "true"] })
        {
            var r = await Cli(args);
            Assert.True(r.ExitCode == 125, string.Join(' ', args) + ": " + r);
            Assert.Contains("not found", r.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Prune_with_nothing_to_do_exits_zero()
    {
        var r = await Cli("prune");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("Pruned 0 VMs\n", r.Stdout);
    }

    [Fact]
    public async Task Version_and_help_are_the_originals()
    {
        var version = await Cli("version");
        Assert.True(version.ExitCode == 0, version.ToString());
        Assert.Matches(@"^matchlock \d+\.\d+\.\d+\S*\ncommit: \S+\nbuilt: \S+\n", version.Stdout);
        var flag = await Cli("--version");
        Assert.True(flag.ExitCode == 0, flag.ToString());
        Assert.Equal(version.Stdout, flag.Stdout);
        Assert.Equal(version.Stdout, (await Cli("--log-level", "debug", "version")).Stdout);

        var help = await Cli("--help");
        Assert.True(help.ExitCode == 0, help.ToString());
        foreach (var command in new[] { "run", "exec", "allow-list", "kill", "port-forward", "pull", "build", "image", "volume", "diagnose", "version", "rpc", "list", "get", "inspect", "rm", "prune", "gc", "log", "help" })
        {
            Assert.Matches($@"(?m)^\s+{command}\b", help.Stdout);
        }

        var helpRun = await Cli("help", "run");
        Assert.True(helpRun.ExitCode == 0, helpRun.ToString());
        Assert.Contains("--secret-file", helpRun.Stdout, StringComparison.Ordinal);
        Assert.Equal(helpRun.Stdout, (await Cli("run", "--help")).Stdout);
        Assert.Contains("--console", (await Cli("help", "log")).Stdout, StringComparison.Ordinal);
        Assert.Contains("-o, --output", (await Cli("help", "volume", "ls")).Stdout, StringComparison.Ordinal);
        Refused(await Cli("help", "nosuch"), "unknown command");
        Refused(await Cli("--log-level", "chatty", "version"), "--log-level");
    }

    [Fact]
    public async Task Volume_commands_print_the_originals_lines_and_errors()
    {
        var create = await Cli("volume", "create", "compat", "--size", "16");
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.StartsWith("Created volume compat", create.Stdout, StringComparison.Ordinal);
        Refused(await Cli("volume", "create", "compat", "--size", "16"), "named volume already exists");

        var ls = await Cli("volume", "ls");
        Assert.Matches(@"^NAME\s+SIZE\ncompat\s+16\.0 MB\n$", ls.Stdout);
        Assert.Matches(@"^NAME\s+SIZE\s+PATH\ncompat\s+16\.0 MB\s+/\S+/compat\.ext4\n$", (await Cli("volume", "ls", "-o", "wide")).Stdout);
        using (var json = JsonDocument.Parse((await Cli("volume", "ls", "--json")).Stdout))
        {
            Assert.EndsWith("/compat.ext4", json.RootElement[0].GetProperty("path").GetString(), StringComparison.Ordinal);
        }

        var copy = await Cli("volume", "cp", "compat", "compat2");
        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.StartsWith("Copied volume compat to compat2\n", copy.Stdout, StringComparison.Ordinal);
        Refused(await Cli("volume", "cp", "nope", "x"), "named volume not found");
        Refused(await Cli("volume", "rm", "nope"), "named volume not found");

        var rm = await Cli("volume", "rm", "compat", "compat2");
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.Equal("Removed volume compat\nRemoved volume compat2\n", rm.Stdout);
    }
}
