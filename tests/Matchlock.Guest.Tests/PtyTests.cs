using System.Globalization;
using Matchlock.Guest.Processes;
using static Matchlock.Guest.Tests.ProcessTestSupport;

namespace Matchlock.Guest.Tests;

/// <summary>Commands on a PTY: controlling terminal, size, resize, end of output.</summary>
public sealed class PtyTests
{
    [Fact]
    public async Task The_pty_is_the_controlling_terminal_with_the_requested_size()
    {
        // Opening /dev/tty fails with ENXIO unless the process has a controlling terminal.
        using var child = NewSpawner().Spawn(Shell("tty; stty size; echo via-dev-tty > /dev/tty; ps -o sid= -p $$ 2>/dev/null || cut -d' ' -f6 /proc/$$/stat") with { Tty = true, Rows = 33, Columns = 101 });
        var (status, output, _) = await RunToEndAsync(child);
        var lines = output.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("/dev/pts/", lines[0], StringComparison.Ordinal);
        Assert.Equal("33 101", lines[1]);
        Assert.Equal("via-dev-tty", lines[2]);
        Assert.Equal(child.Pid, int.Parse(lines[3].Trim(), CultureInfo.InvariantCulture)); // session leader
        Assert.Equal(0, status.ExitCode);
    }

    [Fact]
    public async Task Resize_is_seen_by_the_command()
    {
        using var child = NewSpawner().Spawn(Shell("stty -echo; read x; stty size") with { Tty = true, Rows = 10, Columns = 20 });
        var output = ReadAllAsync(child.Terminal);
        child.Pty!.Resize(50, 160);
        child.Terminal!.Write("go\n"u8);
        await child.Exited.WaitAsync(TestTimeout, TestContext.Current.CancellationToken);
        Assert.Contains("50 160", await output.WaitAsync(TestTimeout, TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Output_written_just_before_exit_is_not_lost()
    {
        using var child = NewSpawner().Spawn(Shell("seq 1 2000") with { Tty = true });
        var (_, output, _) = await RunToEndAsync(child);
        Assert.EndsWith("1999\r\n2000\r\n", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Term_defaults_to_xterm_on_a_pty()
    {
        using var child = NewLauncher().Launch(new CommandRequest(["sh", "-c", "echo $TERM"]) { Tty = true });
        Assert.Equal("xterm\r\n", (await RunToEndAsync(child)).Stdout);
    }
}
