using Matchlock.Guest.Processes;
using Matchlock.Integration.Tests;
using static Matchlock.Guest.Tests.ProcessTestSupport;

namespace Matchlock.Guest.Integration.Tests;

/// <summary>
/// User switching through the re-exec helper, from an exec request to a process on the host.
/// Needs root (setuid/setgid) and the published guest binary as the helper.
/// </summary>
public sealed class LauncherAsAnotherUserTests
{
    [Fact]
    public async Task Runs_as_another_user_through_the_helper()
    {
        var helper = RequireHelper();
        using var child = NewLauncher(helper).Launch(new CommandRequest(["sh", "-c", "id -u; id -g; id -G; echo $HOME"]) { User = "nobody" });
        var (status, stdout, stderr) = await RunToEndAsync(child);
        Assert.True(status.ExitCode == 0, $"exit {status}, stderr: {stderr}");
        var nobody = Users.UserSpecResolver.Resolve("nobody", Users.UserDatabase.Load("/"));
        var expectedGroups = string.Join(' ', new[] { nobody.Gid }.Concat(nobody.SupplementaryGroups).Distinct());
        Assert.Equal($"{nobody.Uid}\n{nobody.Gid}\n{expectedGroups}\n{nobody.Home}\n", stdout);
    }

    [Fact]
    public async Task Numeric_user_and_group_without_passwd_entries_work()
    {
        var helper = RequireHelper();
        using var child = NewLauncher(helper).Launch(new CommandRequest(["sh", "-c", "id -u; id -g; id -G"]) { User = "4242:4343" });
        var (_, stdout, stderr) = await RunToEndAsync(child);
        Assert.True(stdout == "4242\n4343\n4343\n", $"stdout: {stdout} stderr: {stderr}");
    }

    [Fact]
    public async Task A_pty_command_as_another_user_owns_its_terminal()
    {
        var helper = RequireHelper();
        using var child = NewLauncher(helper).Launch(new CommandRequest(["sh", "-c", "id -u; stat -c %u $(tty); echo ok > /dev/tty"]) { User = "nobody", Tty = true });
        var (_, output, _) = await RunToEndAsync(child);
        var uid = Users.UserSpecResolver.Resolve("nobody", Users.UserDatabase.Load("/")).Uid;
        Assert.Equal($"{uid}\r\n{uid}\r\nok\r\n", output);
    }

    [Fact]
    public async Task Helper_failures_reach_stderr_with_shell_codes()
    {
        var helper = RequireHelper();
        // Bypass the resolver so the helper itself meets the missing file.
        var spec = new SpawnSpec("/no/such/program", ["x"], [], "/", new Users.ExecUser(65534, 65534, [], "/", null));
        using var child = NewSpawner(helper).Spawn(spec);
        var (status, _, stderr) = await RunToEndAsync(child);
        Assert.Equal((127, "exec: /no/such/program: no such file or directory\n"), (status.ExitCode, stderr));
    }

    /// <summary>Root, and the published guest binary as the exec-as helper; skips or fails (CI) without them.</summary>
    internal static string RequireHelper()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);
        if (HelperPath is not { } helper)
        {
            HostPrerequisites.SkipOrFail(
                "the exec-as helper needs the published guest binary: run ./test.sh (it publishes it), " +
                "`dotnet publish src/Matchlock.Guest -c Release -o artifacts/guest`, or set MATCHLOCK_GUEST_BIN");
            return "";
        }

        return helper;
    }
}
