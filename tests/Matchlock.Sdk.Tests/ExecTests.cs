using System.Text;

namespace Matchlock.Sdk.Tests;

/// <summary>exec, exec_stream, exec_pipe and exec_tty: output routing, binary safety, stdin ordering, cancellation.</summary>
public sealed class ExecTests
{
    private static readonly byte[] AllBytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_returns_every_byte_value_unchanged()
    {
        var server = new FakeServer().On("exec", c => c.ResultAsync(
            $$"""{"exit_code":3,"stdout":"{{Convert.ToBase64String(AllBytes)}}","stderr":"{{Convert.ToBase64String("oops\n"u8.ToArray())}}","duration_ms":12}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var result = await sandbox.ExecAsync("cat /bin/blob", new ExecOptions { WorkingDir = "/tmp", User = "nobody", Env = new Dictionary<string, string> { ["X"] = "1" } }, Fake.Token);
            Assert.Equal(AllBytes, result.Stdout);
            Assert.Equal("oops\n", result.StderrText);
            Assert.Equal(3, result.ExitCode); // a failing command is a result, not an exception
            Assert.False(result.Succeeded);
            Assert.Equal(TimeSpan.FromMilliseconds(12), result.Duration);

            var p = server.Single("exec").Params;
            Assert.Equal("cat /bin/blob", p.GetProperty("command").GetString());
            Assert.Equal("/tmp", p.GetProperty("working_dir").GetString());
            Assert.Equal("nobody", p.GetProperty("user").GetString());
            Assert.Equal("1", p.GetProperty("env").GetProperty("X").GetString());
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_sends_only_the_command_when_no_options_are_given()
    {
        var server = new FakeServer().On("exec", c => c.ResultAsync("""{"exit_code":0,"stdout":"","stderr":"","duration_ms":1}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await sandbox.ExecAsync("true", cancellationToken: Fake.Token);
            Assert.Equal(["command"], server.Single("exec").Params.EnumerateObject().Select(m => m.Name));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_failure_is_an_exec_exception_and_the_sandbox_stays_usable()
    {
        var failures = 0;
        var server = new FakeServer().On("exec", c => Interlocked.Increment(ref failures) == 1
            ? c.ErrorAsync(-32001, "exec failed: no such file: /nope")
            : c.ResultAsync("""{"exit_code":0,"stdout":"","stderr":"","duration_ms":1}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var error = await Assert.ThrowsAsync<MatchlockExecException>(() => sandbox.ExecAsync("/nope", cancellationToken: Fake.Token));
            Assert.Equal(-32001, error.Code);
            Assert.Contains("/nope", error.Message, StringComparison.Ordinal);
            Assert.True((await sandbox.ExecAsync("true", cancellationToken: Fake.Token)).Succeeded);
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Cancelling_exec_sends_cancel_with_the_requests_id()
    {
        var server = new FakeServer().On("exec", c => Task.Delay(Timeout.Infinite, c.Cancelled));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Fake.Token);
            var running = sandbox.ExecAsync("sleep 100", cancellationToken: cts.Token);
            var exec = await server.WaitForAsync("exec");
            await cts.CancelAsync();
            var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
            Assert.Equal(cts.Token, thrown.CancellationToken);
            var cancel = await server.WaitForAsync("cancel");
            Assert.Equal(exec.Id, cancel.Params.GetProperty("id").GetInt64());
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_request_the_server_cancelled_throws_OperationCanceledException()
    {
        var server = new FakeServer().On("exec", c => c.ErrorAsync(-32003, "exec was cancelled"));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sandbox.ExecAsync("sleep 1", cancellationToken: Fake.Token));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_stream_yields_each_chunk_of_its_own_request_then_the_exit()
    {
        var server = new FakeServer().On("exec_stream", async c =>
        {
            // Another request's output in between must not leak into this one.
            await c.Server.NotifyAsync("exec_stream.stdout", """{"id":424242,"data":"eA=="}""");
            await c.DataAsync("exec_stream.stdout", [0x00, 0xFF]);
            await c.DataAsync("exec_stream.stderr", "warn"u8.ToArray());
            await c.DataAsync("exec_stream.stdout", AllBytes);
            await c.ResultAsync("""{"exit_code":7,"duration_ms":40}""");
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var items = new List<ExecOutput>();
            await foreach (var item in sandbox.ExecStreamAsync("make", cancellationToken: Fake.Token))
            {
                items.Add(item);
            }

            Assert.Equal([ExecOutputKind.Stdout, ExecOutputKind.Stderr, ExecOutputKind.Stdout, ExecOutputKind.Exit], items.Select(i => i.Kind));
            Assert.Equal(new byte[] { 0x00, 0xFF }, items[0].Data.ToArray());
            Assert.Equal("warn", items[1].Text);
            Assert.Equal(AllBytes, items[2].Data.ToArray());
            Assert.Equal(new ExecStatus(7, TimeSpan.FromMilliseconds(40)), items[3].Status);
            Assert.Empty(server.Calls("cancel")); // it ran to its end
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_stream_into_streams_copies_stdout_and_stderr_apart()
    {
        var server = new FakeServer().On("exec_stream", async c =>
        {
            await c.DataAsync("exec_stream.stdout", "out1 "u8.ToArray());
            await c.DataAsync("exec_stream.stderr", "err"u8.ToArray());
            await c.DataAsync("exec_stream.stdout", "out2"u8.ToArray());
            await c.ResultAsync("""{"exit_code":0,"duration_ms":5}""");
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            using var stdout = new MemoryStream();
            using var stderr = new MemoryStream();
            var status = await sandbox.ExecStreamAsync("echo", stdout, stderr, cancellationToken: Fake.Token);
            Assert.Equal(0, status.ExitCode);
            Assert.Equal("out1 out2", Encoding.UTF8.GetString(stdout.ToArray()));
            Assert.Equal("err", Encoding.UTF8.GetString(stderr.ToArray()));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Leaving_an_exec_stream_early_cancels_the_command()
    {
        var server = new FakeServer().On("exec_stream", async c =>
        {
            await c.DataAsync("exec_stream.stdout", "first"u8.ToArray());
            await Task.Delay(Timeout.Infinite, c.Cancelled);
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await foreach (var item in sandbox.ExecStreamAsync("yes", cancellationToken: Fake.Token))
            {
                Assert.Equal("first", item.Text);
                break;
            }

            var cancel = await server.WaitForAsync("cancel");
            Assert.Equal(server.Single("exec_stream").Id, cancel.Params.GetProperty("id").GetInt64());
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_stream_failure_surfaces_from_the_enumeration()
    {
        var server = new FakeServer().On("exec_stream", c => c.ErrorAsync(-32001, "no shell"));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await Assert.ThrowsAsync<MatchlockExecException>(async () =>
            {
                await foreach (var unused in sandbox.ExecStreamAsync("x", cancellationToken: Fake.Token))
                {
                }
            });
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_pipe_sends_no_stdin_before_ready_then_chunks_and_eof()
    {
        var readySent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stdinBeforeReady = 0;
        var payload = Enumerable.Range(0, 100_000).Select(i => (byte)(i * 7)).ToArray();
        var server = new FakeServer();
        server.On("exec_pipe", async c =>
        {
            // Hold ready back a while: a client that does not wait would send stdin now.
            await Task.Delay(300, c.Cancelled);
            stdinBeforeReady = server.Calls("exec_pipe.stdin").Count();
            await c.NotifyAsync("exec_pipe.ready");
            readySent.SetResult();

            // Echo stdin back as `cat` would, until EOF.
            var received = new MemoryStream();
            await foreach (var input in server.InputFor(c.Id).Reader.ReadAllAsync(c.Cancelled))
            {
                if (input.Method == "exec_pipe.stdin_eof")
                {
                    break;
                }

                var data = Convert.FromBase64String(input.Params.GetProperty("data").GetString()!);
                received.Write(data);
                await c.DataAsync("exec_pipe.stdout", data);
            }

            await c.DataAsync("exec_pipe.stderr", "done"u8.ToArray());
            await c.ResultAsync("""{"exit_code":0,"duration_ms":9}""");
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await using var pipe = await sandbox.ExecPipeAsync("cat", cancellationToken: Fake.Token);
            Assert.True(readySent.Task.IsCompleted, "ExecPipeAsync returns once the command is ready");
            var reading = ReadAllAsync(pipe.StandardOutput);
            await pipe.StandardInput.WriteAsync(payload, Fake.Token);
            await pipe.StandardInput.DisposeAsync();

            Assert.Equal(payload, await reading);
            Assert.Equal("done", Encoding.UTF8.GetString(await ReadAllAsync(pipe.StandardError)));
            Assert.Equal(0, (await pipe.WaitAsync(Fake.Token)).ExitCode);
        }

        Assert.Equal(0, stdinBeforeReady);
        var chunks = server.Calls("exec_pipe.stdin").ToList();
        Assert.True(chunks.Count >= 2, "large stdin goes out in several chunks");
        Assert.All(chunks, c => Assert.Equal(server.Single("exec_pipe").Id, c.Params.GetProperty("id").GetInt64()));
        Assert.Single(server.Calls("exec_pipe.stdin_eof"));
        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_pipe_that_fails_before_ready_throws_from_the_start()
    {
        var server = new FakeServer().On("exec_pipe", c => c.ErrorAsync(-32001, "exec failed"));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await Assert.ThrowsAsync<MatchlockExecException>(() => sandbox.ExecPipeAsync("nope", cancellationToken: Fake.Token));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Disposing_a_running_pipe_cancels_its_command()
    {
        var server = new FakeServer().On("exec_pipe", async c =>
        {
            await c.NotifyAsync("exec_pipe.ready");
            await Task.Delay(Timeout.Infinite, c.Cancelled);
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var pipe = await sandbox.ExecPipeAsync("sleep 100", cancellationToken: Fake.Token);
            await pipe.DisposeAsync();
            var cancel = await server.WaitForAsync("cancel");
            Assert.Equal(server.Single("exec_pipe").Id, cancel.Params.GetProperty("id").GetInt64());
            Assert.Empty(await ReadAllAsync(pipe.StandardOutput)); // ended, not hanging
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Exec_tty_sends_its_size_resizes_and_reads_the_terminal()
    {
        var server = new FakeServer();
        server.On("exec_tty", async c =>
        {
            await c.NotifyAsync("exec_tty.ready");
            await foreach (var input in server.InputFor(c.Id).Reader.ReadAllAsync(c.Cancelled))
            {
                if (input.Method == "exec_tty.resize")
                {
                    await c.DataAsync("exec_tty.stdout", Encoding.UTF8.GetBytes($"{input.Params.GetProperty("rows")}x{input.Params.GetProperty("cols")}\r\n"));
                }
                else if (input.Method == "exec_tty.stdin")
                {
                    await c.DataAsync("exec_tty.stdout", Convert.FromBase64String(input.Params.GetProperty("data").GetString()!));
                }
                else
                {
                    break;
                }
            }

            await c.ResultAsync("""{"exit_code":130,"duration_ms":3}""");
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await using var tty = await sandbox.ExecTtyAsync("sh", rows: 40, cols: 120, cancellationToken: Fake.Token);
            await tty.ResizeAsync(50, 132, Fake.Token);
            await tty.Input.WriteAsync("ls\r"u8.ToArray(), Fake.Token);
            await tty.CloseInputAsync();
            Assert.Equal("50x132\r\nls\r", Encoding.UTF8.GetString(await ReadAllAsync(tty.Output)));
            Assert.Equal(130, (await tty.WaitAsync(Fake.Token)).ExitCode);

            var p = server.Single("exec_tty").Params;
            Assert.Equal(40, p.GetProperty("rows").GetInt32());
            Assert.Equal(120, p.GetProperty("cols").GetInt32());
        }

        server.AssertConforms();
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, Fake.Token);
        return copy.ToArray();
    }
}
