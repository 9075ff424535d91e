// The ways to run a command: buffered, streamed, piped (stdin/stdout/stderr), and on a terminal.
using System.Text;
using Matchlock.Examples;
using Matchlock.Sdk;

return await Example.RunAsync(async ct =>
{
    await using var sandbox = await MatchlockClient.CreateAsync(new SandboxOptions { Image = Example.Image }, Example.Client, ct);
    Console.WriteLine($"sandbox {sandbox.Id} is up");

    // Buffered: everything at the end.
    var uname = await sandbox.ExecAsync("uname -s", cancellationToken: ct);
    Example.Check(uname.StdoutText.Trim() == "Linux", $"exec: uname -s = {uname.StdoutText.Trim()}");

    // Streamed: each chunk as it comes, the exit status last.
    var lines = new StringBuilder();
    ExecStatus? status = null;
    await foreach (var output in sandbox.ExecStreamAsync("for i in 1 2 3; do echo line $i; sleep 0.2; done; echo oops >&2; exit 4", cancellationToken: ct))
    {
        switch (output.Kind)
        {
            case ExecOutputKind.Stdout:
                Console.Write($"  stdout: {output.Text}");
                lines.Append(output.Text);
                break;
            case ExecOutputKind.Stderr:
                Console.Write($"  stderr: {output.Text}");
                break;
            case ExecOutputKind.Exit:
                status = output.Status;
                break;
        }
    }

    Example.Check(lines.ToString() == "line 1\nline 2\nline 3\n" && status?.ExitCode == 4, "exec stream: three lines, then exit 4");

    // Piped: binary data through `cat` and back, byte for byte.
    var payload = Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 31)).ToArray();
    await using (var cat = await sandbox.ExecPipeAsync("cat", cancellationToken: ct))
    {
        var echoed = Task.Run(async () =>
        {
            using var copy = new MemoryStream();
            await cat.StandardOutput.CopyToAsync(copy, ct);
            return copy.ToArray();
        }, ct);
        await cat.StandardInput.WriteAsync(payload, ct);
        await cat.StandardInput.DisposeAsync(); // EOF: cat ends
        Example.Check((await echoed).AsSpan().SequenceEqual(payload), $"exec pipe: {payload.Length} bytes through cat unchanged");
        Example.Check((await cat.WaitAsync(ct)).Succeeded, "exec pipe: cat exited 0");
    }

    // Terminal: a shell on a PTY, resized, asked its size.
    await using (var tty = await sandbox.ExecTtyAsync("sh", rows: 24, cols: 80, cancellationToken: ct))
    {
        var screen = Task.Run(async () =>
        {
            using var copy = new MemoryStream();
            await tty.Output.CopyToAsync(copy, ct);
            return Encoding.UTF8.GetString(copy.ToArray());
        }, ct);
        await tty.ResizeAsync(50, 132, ct);
        await tty.Input.WriteAsync("stty size; exit 0\n"u8.ToArray(), ct);
        var exit = await tty.WaitAsync(ct);
        var shown = await screen;
        Example.Check(shown.Contains("50 132", StringComparison.Ordinal), "exec tty: the shell sees the new size 50x132");
        Example.Check(exit.Succeeded, "exec tty: the shell exited 0");
    }
});
