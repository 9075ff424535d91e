namespace Matchlock.Sdk.Tests;

/// <summary>
/// The SDK against the real <c>$MATCHLOCK_BIN rpc</c> and image busybox (a VM boots). Runs only
/// with <c>MATCHLOCK_E2E=1</c>; needs what <c>matchlock run</c> needs (KVM, a stored or pullable
/// busybox image).
/// </summary>
public sealed class E2eTests
{
    private static readonly byte[] AllBytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();

    [Fact(Timeout = 300_000)]
    public async Task Launch_exec_pipe_files_close_and_remove_against_the_real_server()
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_E2E") != "1")
        {
            Assert.Skip("end-to-end: set MATCHLOCK_E2E=1 (and MATCHLOCK_BIN to the matchlock binary) to boot a busybox sandbox");
        }

        var ct = TestContext.Current.CancellationToken;
        var sandbox = await MatchlockClient.CreateAsync(new SandboxOptions { Image = "busybox" }, ct);
        try
        {
            Assert.Matches("^vm-[0-9a-f]{8}$", sandbox.Id);

            var hello = await sandbox.ExecAsync("echo hello", cancellationToken: ct);
            Assert.Equal(0, hello.ExitCode);
            Assert.Equal("hello\n", hello.StdoutText);

            var streamed = new List<ExecOutput>();
            await foreach (var item in sandbox.ExecStreamAsync("echo out; echo err >&2; exit 3", cancellationToken: ct))
            {
                streamed.Add(item);
            }

            Assert.Equal("out\n", string.Concat(streamed.Where(i => i.Kind == ExecOutputKind.Stdout).Select(i => i.Text)));
            Assert.Equal("err\n", string.Concat(streamed.Where(i => i.Kind == ExecOutputKind.Stderr).Select(i => i.Text)));
            Assert.Equal(3, streamed[^1].Status!.ExitCode);

            await using (var pipe = await sandbox.ExecPipeAsync("cat", cancellationToken: ct))
            {
                var reading = Task.Run(async () =>
                {
                    using var copy = new MemoryStream();
                    await pipe.StandardOutput.CopyToAsync(copy, ct);
                    return copy.ToArray();
                }, ct);
                await pipe.StandardInput.WriteAsync(AllBytes, ct);
                await pipe.StandardInput.DisposeAsync();
                Assert.Equal(AllBytes, await reading);
                Assert.Equal(0, (await pipe.WaitAsync(ct)).ExitCode);
            }

            await sandbox.WriteFileAsync("/tmp/e2e/blob.bin", AllBytes, cancellationToken: ct);
            Assert.Equal(AllBytes, await sandbox.ReadFileAsync("/tmp/e2e/blob.bin", ct));
            var files = await sandbox.ListFilesAsync("/tmp/e2e", ct);
            var blob = Assert.Single(files);
            Assert.Equal("blob.bin", blob.Name);
            Assert.Equal(256, blob.Size);
            Assert.False(blob.IsDirectory);
            Assert.Equal(420u, blob.Mode & 511u); // 0644: write_file's default mode

            await sandbox.CloseAsync(cancellationToken: ct);
        }
        finally
        {
            await sandbox.RemoveAsync(ct); // closes first if the test failed midway
        }
    }

    [Fact(Timeout = 300_000)]
    public async Task Vfs_host_rules_local_hooks_and_typed_file_events_against_the_real_server()
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_E2E") != "1")
        {
            Assert.Skip("end-to-end: set MATCHLOCK_E2E=1 (and MATCHLOCK_BIN to the matchlock binary) to boot a busybox sandbox");
        }

        var ct = TestContext.Current.CancellationToken;
        var hooked = new System.Collections.Concurrent.ConcurrentQueue<FileEvent>();
        var options = new SandboxOptions
        {
            Image = "busybox",
            NoNetwork = true,
            Mounts = new Dictionary<string, VfsMount> { ["/workspace"] = VfsMount.Memory() },
            VfsInterception = new VfsInterception
            {
                Rules =
                [
                    new VfsHookRule { Name = "host", Ops = [VfsOps.Create], Path = "/workspace/blocked*", Action = VfsHookAction.Block },
                    new VfsHookRule { Name = "local", Ops = [VfsOps.Read], Path = "/workspace/private*", ActionHook = _ => VfsHookAction.Block },
                    new VfsHookRule
                    {
                        Ops = [VfsOps.Write],
                        Path = "/workspace/**",
                        Hook = (e, _) =>
                        {
                            hooked.Enqueue(e);
                            return ValueTask.CompletedTask;
                        },
                    },
                ],
            },
        };
        var sandbox = await MatchlockClient.CreateAsync(options, ct);
        try
        {
            var watched = new System.Collections.Concurrent.ConcurrentQueue<FileEvent>();
            var watching = Task.Run(
                async () =>
                {
                    await foreach (var e in sandbox.WatchFileEventsAsync(ct))
                    {
                        watched.Enqueue(e);
                    }
                },
                ct);
            await Task.Delay(200, ct); // the watcher registers when its enumeration starts

            var blocked = await sandbox.ExecAsync("echo hi > /workspace/blocked.txt", cancellationToken: ct);
            Assert.NotEqual(0, blocked.ExitCode);
            Assert.Contains("Operation not permitted", blocked.StderrText, StringComparison.Ordinal);

            var moved = await sandbox.ExecAsync("echo abc > /workspace/a && mv /workspace/a /workspace/b && cat /workspace/b", cancellationToken: ct);
            Assert.Equal("abc\n", moved.StdoutText);
            await Matchlock.Tests.Eventually.Until(() => watched.Any(e => e.Op == VfsOps.Rename) && !hooked.IsEmpty, TimeSpan.FromSeconds(15), "the rename event and the after-hook");
            var rename = watched.First(e => e.Op == VfsOps.Rename);
            Assert.Equal(("/workspace/a", "/workspace/b"), (rename.Path, rename.NewPath));
            var write = Assert.Single(hooked);
            Assert.Equal(("/workspace/a", 4L), (write.Path, write.Size));
            Assert.DoesNotContain(watched, e => e.Path.Contains("blocked", StringComparison.Ordinal));

            await sandbox.WriteFileAsync("/workspace/private.txt", "p", cancellationToken: ct);
            await Assert.ThrowsAsync<MatchlockVfsHookBlockedException>(() => sandbox.ReadFileAsync("/workspace/private.txt", ct));
            Assert.Equal("abc\n", await sandbox.ReadFileTextAsync("/workspace/b", ct)); // other paths read as usual

            await sandbox.CloseAsync(cancellationToken: ct);
            await watching.WaitAsync(TimeSpan.FromSeconds(10), ct); // close ends the enumeration
        }
        finally
        {
            await sandbox.RemoveAsync(ct);
        }
    }
}
