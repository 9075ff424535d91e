using System.Collections.Concurrent;
using System.Text;
using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk.Tests;

/// <summary>VFS rules: host rules on the wire, and the action, mutate and after hooks run in this process.</summary>
public sealed class VfsHookTests
{
    private static readonly Func<FileEvent, CancellationToken, ValueTask> Ignore = (_, _) => ValueTask.CompletedTask;

    private static SandboxOptions With(params VfsHookRule[] rules) => Fake.Busybox with
    {
        Mounts = new Dictionary<string, VfsMount> { ["/workspace"] = VfsMount.Memory() },
        VfsInterception = new VfsInterception { Rules = rules },
    };

    private static Task FileEventAsync(FakeServer server, string op, string path, long size = 3) =>
        server.NotifyAsync("event", $$$"""{"type":"file","timestamp":1714558830001,"file":{"op":"{{{op}}}","path":"{{{path}}}","size":{{{size}}},"mode":420,"uid":0,"gid":0}}""");

    [Fact(Timeout = Fake.Timeout)]
    public async Task Callback_rules_stay_here_host_rules_are_sent_and_after_hooks_turn_events_on()
    {
        var options = With(
            new VfsHookRule { Name = "no-secrets", Phase = VfsHookPhase.Before, Ops = [VfsOps.Create, VfsOps.Write], Path = "/workspace/secret*", Action = VfsHookAction.Block, Timeout = TimeSpan.FromMilliseconds(1500) },
            new VfsHookRule { Name = "guard", ActionHook = _ => VfsHookAction.Allow },
            new VfsHookRule { Name = "rewrite", MutateHook = _ => null },
            new VfsHookRule { Name = "audit", Phase = VfsHookPhase.After, Hook = Ignore },
            new VfsHookRule { Name = "allow-all" });
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            var interception = server.Single("create").Params.GetProperty("vfs").GetProperty("interception");
            Assert.True(interception.GetProperty("emit_events").GetBoolean()); // forced by the after-hook
            var rules = interception.GetProperty("rules").EnumerateArray().ToList();
            Assert.Equal(["no-secrets", "allow-all"], rules.Select(r => r.GetProperty("name").GetString()));
            Assert.Equal("block", rules[0].GetProperty("action").GetString());
            Assert.Equal("before", rules[0].GetProperty("phase").GetString());
            Assert.Equal(["create", "write"], rules[0].GetProperty("ops").EnumerateArray().Select(o => o.GetString()));
            Assert.Equal(1500, rules[0].GetProperty("timeout_ms").GetInt32());
            Assert.Equal("allow", rules[1].GetProperty("action").GetString());
            Assert.False(rules[1].TryGetProperty("phase", out _));
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Only_before_hooks_and_no_mounts_send_no_vfs_at_all()
    {
        var options = Fake.Busybox with { VfsInterception = new VfsInterception { Rules = [new VfsHookRule { ActionHook = _ => VfsHookAction.Block }] } };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            Assert.False(server.Single("create").Params.TryGetProperty("vfs", out _));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Action_hooks_block_the_sdks_own_file_calls_before_anything_is_sent()
    {
        var asked = new ConcurrentQueue<VfsActionRequest>();
        var options = With(
            new VfsHookRule
            {
                Name = "no-env-files",
                Ops = [VfsOps.Write, VfsOps.Read, VfsOps.ReadDir],
                Path = "/workspace/**",
                ActionHook = request =>
                {
                    asked.Enqueue(request);
                    return request.Path.EndsWith(".env", StringComparison.Ordinal) || request.Path == "/workspace/private" ? VfsHookAction.Block : VfsHookAction.Allow;
                },
            });
        var server = new FakeServer()
            .On("write_file", c => c.ResultAsync("{}"))
            .On("read_file", c => c.ResultAsync("""{"content":"aGk="}"""))
            .On("list_files", c => c.ResultAsync("""{"files":[]}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server, options);
        await using (sandbox)
        {
            var write = await Assert.ThrowsAsync<MatchlockVfsHookBlockedException>(() => sandbox.WriteFileAsync("/workspace/app/.env", "KEY=1", cancellationToken: Fake.Token));
            Assert.Equal((VfsOps.Write, "/workspace/app/.env", "no-env-files"), (write.Op, write.Path, write.HookName));
            Assert.Equal(MatchlockRpcException.FileFailed, write.Code);
            Assert.IsAssignableFrom<MatchlockFileException>(write);
            await Assert.ThrowsAsync<MatchlockVfsHookBlockedException>(() => sandbox.ReadFileAsync("/workspace/.env", Fake.Token));
            await Assert.ThrowsAsync<MatchlockVfsHookBlockedException>(() => sandbox.ListFilesAsync("/workspace/private", Fake.Token));
            Assert.Empty(server.Calls("write_file").Concat(server.Calls("read_file")).Concat(server.Calls("list_files")));

            await sandbox.WriteFileAsync("/workspace/ok.txt", "hello", UnixFileMode.UserRead | UnixFileMode.UserWrite, Fake.Token);
            Assert.Equal("hi", await sandbox.ReadFileTextAsync("/workspace/ok.txt", Fake.Token));
            Assert.Empty(await sandbox.ListFilesAsync("/workspace", Fake.Token));
            await sandbox.WriteFileAsync("/tmp/x.env", "outside the glob", cancellationToken: Fake.Token);
            Assert.Equal(2, server.Calls("write_file").Count());

            var okWrite = asked.Single(r => r.Path == "/workspace/ok.txt" && r.Op == VfsOps.Write);
            Assert.Equal((5L, 384u), (okWrite.Size, okWrite.Mode)); // 0600
            Assert.Equal((0L, 0u), (asked.Single(r => r.Op == VfsOps.Read && r.Path == "/workspace/ok.txt").Size, asked.First(r => r.Op == VfsOps.ReadDir).Mode));
            Assert.DoesNotContain(asked, r => r.Path.StartsWith("/tmp", StringComparison.Ordinal));
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Mutate_hooks_rewrite_what_write_file_sends_in_order()
    {
        var options = With(
            new VfsHookRule { Name = "upper", Path = "/workspace/*.txt", MutateHook = r => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(r.Content.Span).ToUpperInvariant()) },
            new VfsHookRule { Name = "stamp", Ops = [VfsOps.Write], MutateHook = r => r.Path.EndsWith(".txt", StringComparison.Ordinal) ? [.. r.Content.Span, .. "!"u8] : null },
            new VfsHookRule { Name = "reads only", Ops = [VfsOps.Read], MutateHook = _ => "never"u8.ToArray() });
        var server = new FakeServer().On("write_file", c => c.ResultAsync("{}"));
        var (_, sandbox) = await Fake.LaunchAsync(server, options);
        await using (sandbox)
        {
            await sandbox.WriteFileAsync("/workspace/a.txt", "hello", cancellationToken: Fake.Token);
            await sandbox.WriteFileAsync("/workspace/b.bin", "raw", cancellationToken: Fake.Token);
            var sent = server.Calls("write_file").Select(c => Encoding.UTF8.GetString(Convert.FromBase64String(c.Params.GetProperty("content").GetString()!))).ToList();
            Assert.Equal(["HELLO!", "raw"], sent);
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task After_hooks_run_on_matching_file_events_and_their_failures_go_nowhere()
    {
        var seen = new ConcurrentQueue<FileEvent>();
        var options = With(
            new VfsHookRule { Name = "boom", Phase = VfsHookPhase.After, Ops = [VfsOps.Write], Path = "/workspace/**", Hook = (_, _) => throw new InvalidOperationException("hook bug") },
            new VfsHookRule
            {
                Name = "record",
                Ops = [VfsOps.Write],
                Path = "/workspace/**",
                Hook = (e, _) =>
                {
                    seen.Enqueue(e);
                    return ValueTask.CompletedTask;
                },
            });
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            await FileEventAsync(server, "read", "/workspace/a");
            await FileEventAsync(server, "write", "/scratch/a");
            await server.NotifyAsync("event", """{"type":"network","timestamp":1,"network":{"method":"GET","url":"http://x/","host":"x"}}""");
            await FileEventAsync(server, "write", "/workspace/deep/dir/a", size: 7);
            await Matchlock.Tests.Eventually.Until(() => !seen.IsEmpty, TimeSpan.FromSeconds(10), "the after-hook");
            var e = Assert.Single(seen);
            Assert.Equal(("write", "/workspace/deep/dir/a", 7L, 420u), (e.Op, e.Path, e.Size, e.Mode));
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1714558830001), e.Timestamp);

            // The first hook threw and the second still ran; later events still reach them (once
            // the batch is over: events during a batch are dropped, hence the repeats).
            await Matchlock.Tests.Eventually.Until(
                async () =>
                {
                    await FileEventAsync(server, "write", "/workspace/b");
                    await Task.Delay(50, Fake.Token);
                    return seen.Count >= 2;
                },
                TimeSpan.FromSeconds(10),
                "a later event");
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Events_arriving_while_a_safe_after_hook_runs_do_not_re_enter_it()
    {
        var calls = new ConcurrentQueue<string>();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dangerous = new ConcurrentQueue<(Sandbox Sandbox, string Path)>();
        var options = With(
            new VfsHookRule
            {
                Hook = async (e, ct) =>
                {
                    calls.Enqueue(e.Path);
                    if (e.Path == "/workspace/first")
                    {
                        await release.Task.WaitAsync(ct); // e.g. the hook writing a file itself
                    }
                },
                Timeout = TimeSpan.FromSeconds(20),
            },
            new VfsHookRule
            {
                DangerousHook = (s, e, _) =>
                {
                    dangerous.Enqueue((s, e.Path));
                    return ValueTask.CompletedTask;
                },
            });
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            await FileEventAsync(server, "write", "/workspace/first");
            await Matchlock.Tests.Eventually.Until(() => calls.Count == 1, TimeSpan.FromSeconds(10), "the first hook call");
            await FileEventAsync(server, "write", "/workspace/caused-by-the-hook");
            await Matchlock.Tests.Eventually.Until(() => dangerous.Count == 2, TimeSpan.FromSeconds(10), "the dangerous hook, for both events");
            Assert.Equal(["/workspace/first"], calls); // not re-entered
            Assert.All(dangerous, d => Assert.Same(sandbox, d.Sandbox));

            release.SetResult();
            // Once the hook has finished (its guard drops just after), a later event runs it again.
            await Matchlock.Tests.Eventually.Until(
                async () =>
                {
                    await FileEventAsync(server, "write", "/workspace/later");
                    await Task.Delay(50, Fake.Token);
                    return calls.Count >= 2;
                },
                TimeSpan.FromSeconds(10),
                "a later event after the hook finished");
            Assert.Equal("/workspace/later", calls.Last());
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task File_events_are_typed_with_the_new_path_of_a_rename()
    {
        var (server, sandbox) = await Fake.LaunchAsync(options: Fake.Busybox with { VfsInterception = new VfsInterception { EmitEvents = true } });
        await using (sandbox)
        {
            Assert.True(server.Single("create").Params.GetProperty("vfs").GetProperty("interception").GetProperty("emit_events").GetBoolean());
            var watching = sandbox.WatchFileEventsAsync(Fake.Token).GetAsyncEnumerator(Fake.Token);
            var next = watching.MoveNextAsync().AsTask(); // runs the enumeration up to its first wait: the watcher is registered
            await server.NotifyAsync("event", """{"type":"network","timestamp":1,"network":{"method":"GET","url":"http://x/","host":"x"}}""");
            await server.NotifyAsync("event", """{"type":"file","timestamp":1714558830002,"file":{"op":"rename","path":"/workspace/a","new_path":"/workspace/b","size":0,"mode":420,"uid":1000,"gid":1000}}""");
            Assert.True(await next);
            var file = watching.Current;
            Assert.Equal(("rename", "/workspace/a", "/workspace/b", 1000, 1000), (file.Op, file.Path, file.NewPath, file.Uid, file.Gid));
            await watching.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("/workspace/**", "/workspace/a/b/c.txt", true)]
    [InlineData("/workspace/*", "/workspace/a/b", false)]
    [InlineData("/workspace/*", "/workspace/a.txt", true)]
    [InlineData("/workspace/blocked.txt", "/workspace/blocked.txt", true)]
    [InlineData("/workspace/blocked.txt", "/workspace/blockedXtxt", false)]
    [InlineData("/w/file?.[ch]", "/w/file1.c", true)]
    [InlineData("/w/file?.[!ch]", "/w/file1.c", false)]
    [InlineData("/w/[a-c]*", "/w/beta", true)]
    [InlineData("/w/\\*", "/w/*", true)]
    [InlineData("/w/\\*", "/w/x", false)]
    [InlineData("*.env", "/workspace/.env", false)]
    [InlineData("**.env", "/workspace/.env", true)]
    [InlineData("/w/[]a]", "/w/]", true)]
    [InlineData("/w/[!]]", "/w/]", false)]
    public void Path_globs_match_as_the_server_matches_host_rules(string pattern, string path, bool matches) =>
        Assert.Equal(matches, VfsLocalHooks.Glob(pattern).IsMatch(path));

    [Theory]
    [InlineData("/w/[")]
    [InlineData("/w/[!")]
    [InlineData("/w/[]")]
    [InlineData("/w/x\\")]
    public void Malformed_globs_are_argument_errors(string pattern) =>
        Assert.IsType<ArgumentException>(Record.Exception(() => VfsLocalHooks.Glob(pattern)));

    [Fact]
    public async Task Misused_callback_rules_are_refused_before_anything_starts()
    {
        var cases = new[]
        {
            new VfsHookRule { Name = "two", ActionHook = _ => VfsHookAction.Allow, Hook = Ignore },
            new VfsHookRule { Name = "act", Action = VfsHookAction.Block, ActionHook = _ => VfsHookAction.Allow },
            new VfsHookRule { Name = "late", Phase = VfsHookPhase.After, MutateHook = _ => null },
            new VfsHookRule { Name = "early", Phase = VfsHookPhase.Before, Hook = Ignore },
            new VfsHookRule { Name = "glob", Path = "/w/[abc", Hook = Ignore },
        };
        foreach (var rule in cases)
        {
            var server = new FakeServer();
            var error = await Assert.ThrowsAsync<ArgumentException>(() => MatchlockClient.LaunchAsync(With(rule), server.ClientOptions(), Fake.Token));
            Assert.Contains(rule.Name!, error.Message, StringComparison.Ordinal);
            Assert.Empty(server.Requests);
        }
    }
}
