using Matchlock.Guest.Processes;
using static Matchlock.Guest.Tests.ProcessTestSupport;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The whole path from an exec request to a process on the host: PATH lookup in the requested
/// environment, shell-style failures, and user switching through the re-exec helper (which needs
/// the published binary and root).
/// </summary>
public sealed class LauncherTests
{
    [Fact]
    public void Unknown_commands_fail_with_127_like_shells()
    {
        var error = Assert.Throws<SpawnException>(() => NewLauncher().Launch(new CommandRequest(["definitely-not-a-command"])));
        Assert.Equal((127, "exec: definitely-not-a-command: not found"), (error.ExitCode, error.Message));
    }

    [Fact]
    public void The_requested_path_is_searched_not_ours()
    {
        var error = Assert.Throws<SpawnException>(() => NewLauncher().Launch(new CommandRequest(["sh"]) { Environment = ["PATH=/nonexistent"] }));
        Assert.Equal(127, error.ExitCode);
    }

    [Fact]
    public void Non_executable_files_fail_with_126()
    {
        var script = Path.Combine(Path.GetTempPath(), $"matchlock-noexec-{Guid.NewGuid():N}.sh");
        File.WriteAllText(script, "echo hi\n");
        try
        {
            var error = Assert.Throws<SpawnException>(() => NewLauncher().Launch(new CommandRequest([script])));
            Assert.Equal(126, error.ExitCode);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public void Missing_working_directory_and_unknown_user_are_clear_errors()
    {
        var cwd = Assert.Throws<SpawnException>(() => NewLauncher().Launch(new CommandRequest(["true"]) { WorkingDirectory = "/no/such/dir" }));
        Assert.Equal("exec: chdir /no/such/dir: no such file or directory", cwd.Message);
        var user = Assert.Throws<SpawnException>(() => NewLauncher().Launch(new CommandRequest(["true"]) { User = "no-such-user-here" }));
        Assert.Equal("exec: unable to find user no-such-user-here: no matching entries in passwd file", user.Message);
    }

    [Fact]
    public async Task Home_hostname_and_path_defaults_are_set()
    {
        using var child = NewLauncher().Launch(new CommandRequest(["sh", "-c", "echo $HOME $HOSTNAME $PATH"]));
        var (_, stdout, _) = await RunToEndAsync(child);
        Assert.Equal($"/root testhost {EnvironmentBuilder.DefaultPath}\n", stdout);
    }

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

    private static string RequireHelper()
    {
        if (!IsRoot)
        {
            Assert.Skip("user switching needs root (setuid/setgid)");
        }

        if (HelperPath is not { } helper)
        {
            Assert.Skip(
                "the exec-as helper needs the published guest binary: run `dotnet publish src/Matchlock.Guest -c Release -o artifacts/guest` " +
                "or set MATCHLOCK_GUEST_BIN");
            return "";
        }

        return helper;
    }
}
