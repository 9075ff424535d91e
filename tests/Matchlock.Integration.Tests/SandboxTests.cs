using System.Text;
using Matchlock.Core.Sandboxes;
using Matchlock.Tests;

namespace Matchlock.Integration.Tests;

/// <summary>
/// The library API against one real VM: PTY with resize, file operations, concurrent execs,
/// cancellation. Shares one sandbox: each check leaves the guest usable for the next.
/// </summary>
public sealed class SandboxTests(SharedSandbox shared) : IClassFixture<SharedSandbox>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static int Octal(string digits) => Convert.ToInt32(digits, 8);

    private static async Task<(ExecResult Result, string Stdout, string Stderr)> Exec(Sandbox sandbox, ExecSpec spec, CancellationToken ct)
    {
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var result = await sandbox.ExecAsync(spec, null, stdout, stderr, ct);
        return (result, Encoding.UTF8.GetString(stdout.ToArray()), Encoding.UTF8.GetString(stderr.ToArray()));
    }

    [Fact]
    public async Task A_pty_exec_sees_a_terminal_and_its_resize()
    {
        var sandbox = shared.Get();
        await using var session = await sandbox.StartExecAsync(new ExecSpec { Argv = ["sh", "-c", "tty; stty size; read line; stty size"], Tty = true, Stdin = true, Rows = 24, Cols = 80 }, Ct);
        var output = new StringBuilder();
        var buffer = new byte[4096];

        async Task ReadUntil(string text)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            while (!output.ToString().Contains(text, StringComparison.Ordinal))
            {
                var n = await session.Stdout.ReadAsync(buffer, timeout.Token);
                Assert.True(n > 0, "the terminal ended before showing: " + text + "\n" + output);
                output.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }

        await ReadUntil("24 80");
        Assert.Matches("/dev/pts/[0-9]+", output.ToString());

        await session.ResizeAsync(50, 132, Ct);
        await session.Stdin.WriteAsync("go\n"u8.ToArray(), Ct);
        await ReadUntil("50 132");
        var result = await session.WaitAsync(Ct);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Files_written_are_read_back_and_listed()
    {
        var sandbox = shared.Get();
        var content = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("matchlock ", 50_000)));
        await sandbox.WriteFileAsync("/work/sub/a.txt", new MemoryStream(content), Octal("600"), Ct);

        using var back = new MemoryStream();
        var size = await sandbox.ReadFileAsync("/work/sub/a.txt", back, Ct);
        Assert.Equal(content.Length, size);
        Assert.Equal(content, back.ToArray());

        var entries = await sandbox.ListFilesAsync("/work/sub", Ct);
        var entry = Assert.Single(entries);
        Assert.Equal("a.txt", entry.Name);
        Assert.Equal(content.Length, entry.Size);
        Assert.Equal(Octal("600"), entry.Mode & Octal("777"));
        Assert.False(entry.IsDir);

        var (result, stdout, _) = await Exec(sandbox, new ExecSpec { Argv = ["stat", "-c", "%a %s", "/work/sub/a.txt"] }, Ct);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"600 {content.Length}\n", stdout);
    }

    [Fact]
    public async Task Reading_a_missing_file_is_a_clear_error_and_the_sandbox_stays_usable()
    {
        var sandbox = shared.Get();
        var ex = await Assert.ThrowsAsync<GuestOperationException>(() => sandbox.ReadFileAsync("/no/such/file", Stream.Null, Ct));
        Assert.Contains("/no/such/file", ex.Message, StringComparison.Ordinal);
        Assert.Equal("ENOENT", ex.ErrorCode);

        var (result, stdout, _) = await Exec(sandbox, new ExecSpec { Argv = ["echo", "still here"] }, Ct);
        Assert.Equal((0, "still here\n"), (result.ExitCode, stdout));
    }

    [Fact]
    public async Task Concurrent_execs_do_not_mix_their_output()
    {
        var sandbox = shared.Get();
        var runs = Enumerable.Range(0, 6).Select(i => Exec(sandbox, new ExecSpec { Argv = ["sh", "-c", $"for j in 1 2 3 4 5; do echo run{i}-$j; done; echo err{i} >&2"] }, Ct));
        var results = await Task.WhenAll(runs);
        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal(string.Concat(Enumerable.Range(1, 5).Select(j => $"run{i}-{j}\n")), results[i].Stdout);
            Assert.Equal($"err{i}\n", results[i].Stderr);
        }
    }

    [Fact]
    public async Task Cancelling_an_exec_stops_its_process_group()
    {
        var sandbox = shared.Get();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var spec = new ExecSpec { Argv = ["sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000; wait"], KillGrace = TimeSpan.FromSeconds(1) };
        var run = Exec(sandbox, spec, cts.Token);
        await Eventually.Until(
            async () => (await Exec(sandbox, new ExecSpec { Argv = ["sh", "-c", "ps -o comm | grep -c '^sleep' || true"] }, Ct)).Item2.Trim() == "2",
            TimeSpan.FromSeconds(30), "both sleeps to run in the guest");
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(30), Ct));

        // Both sleeps were in the command's process group: none survives the SIGKILL.
        var (_, ps, _) = await Exec(sandbox, new ExecSpec { Argv = ["sh", "-c", "ps -o comm | grep -c '^sleep' || true"] }, Ct);
        Assert.Equal("0", ps.Trim());
    }

    [Fact]
    public async Task A_missing_workdir_fails_with_126_unless_creation_is_asked_for()
    {
        var sandbox = shared.Get();
        var (failed, _, _) = await Exec(sandbox, new ExecSpec { Argv = ["pwd"], WorkingDir = "/not/there" }, Ct);
        Assert.Equal(126, failed.ExitCode);
        Assert.Contains("/not/there", failed.Error ?? "", StringComparison.Ordinal);

        var (created, stdout, _) = await Exec(sandbox, new ExecSpec { Argv = ["pwd"], WorkingDir = "/not/there", CreateWorkingDir = true }, Ct);
        Assert.Equal((0, "/not/there\n"), (created.ExitCode, stdout));
    }

    [Fact]
    public async Task A_missing_program_exits_127_with_a_message()
    {
        var sandbox = shared.Get();
        var (result, _, _) = await Exec(sandbox, new ExecSpec { Argv = ["no-such-program"] }, Ct);
        Assert.Equal(127, result.ExitCode);
        Assert.Contains("no-such-program", result.Error ?? "", StringComparison.Ordinal);
    }
}
