using Matchlock.Guest.Processes;
using static Matchlock.Guest.Tests.ProcessTestSupport;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The whole path from an exec request to a process on the host: PATH lookup in the requested
/// environment and shell-style failures. User switching through the re-exec helper needs root and
/// the published binary: Matchlock.Guest.Integration.Tests/LauncherAsAnotherUserTests.
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
}
