using System.Text;
using System.Text.Json;
using Matchlock.Core.Events;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Hooks;
using Microsoft.Extensions.Logging.Abstractions;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs.Hooks;

/// <summary>The hook layer in front of a memory tree, driven the way the guest's kernel drives a mount.</summary>
public sealed class HookedProviderTests : IAsyncDisposable
{
    private readonly SandboxEventLog _log;
    private readonly List<FileEvent> _events = [];
    private readonly string _dir = Directory.CreateTempSubdirectory("matchlock-hooks-").FullName;

    public HookedProviderTests()
    {
        _log = new SandboxEventLog(Path.Combine(_dir, "events.jsonl"));
        _log.Subscribe(e =>
        {
            lock (_events)
            {
                _events.Add((FileEvent)e);
            }
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _log.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private HookedProvider Hooked(VfsInterception interception) =>
        new(new MemoryProvider(), "/workspace", new VfsHookEngine(interception, _log, TimeProvider.System, NullLogger.Instance));

    private static VfsHookRule Block(string path, params string[] ops) => new() { Name = "guard", Path = path, Ops = ops, Action = VfsHookAction.Block };

    private List<FileEvent> Events()
    {
        lock (_events)
        {
            return [.. _events];
        }
    }

    [Fact]
    public void A_blocking_rule_refuses_with_eperm_touches_nothing_and_is_logged_with_its_name()
    {
        using var p = Hooked(new VfsInterception { Rules = [Block("/workspace/blocked.txt", VfsOps.Create)] });
        Assert.Equal(Errno.EPERM, p.Create(Root, "blocked.txt").Error);
        Assert.Equal(Errno.ENOENT, p.Lookup(Root, "blocked.txt").Error);
        Assert.True(p.Create(Root, "fine.txt").IsOk);

        var refused = Assert.Single(Events());
        Assert.Equal((VfsOps.Create, "/workspace/blocked.txt", "rule 'guard'"), (refused.Op, refused.Path, refused.BlockedBy));
    }

    [Fact]
    public void Paths_follow_directories_renames_and_links_as_the_host_answered_them()
    {
        using var p = Hooked(new VfsInterception { EmitEvents = true, Rules = [Block("/workspace/locked/**", VfsOps.Write)] });
        var dir = p.Mkdir(Root, "src").Value.NodeId;
        var file = p.Create(dir, "a.txt").Value;
        Assert.Equal(3, p.Write(file.Entry.NodeId, file.Handle, 0, B("one")).Value);

        // A folder renamed takes its children's paths with it; the open handle writes under the new path.
        Assert.Equal(Errno.None, p.Rename(Root, "src", Root, "moved"));
        Assert.Equal(3, p.Write(file.Entry.NodeId, file.Handle, 3, B("two")).Value);
        var linked = p.Link(file.Entry.NodeId, Root, "b.txt").Value;
        Assert.Equal(file.Entry.NodeId, linked.NodeId);
        Assert.Equal("onetwo", p.ReadAll(file.Entry.NodeId));

        // Moving it in under the rule is refused; it stays where it is.
        p.Mkdir(Root, "locked");
        Assert.Equal(Errno.EPERM, p.Rename(dir, "a.txt", p.Lookup(Root, "locked").Value.NodeId, "a.txt"));
        var paths = Events().Where(e => e.Op == VfsOps.Write).Select(e => e.Path).ToList();
        Assert.Equal(["/workspace/src/a.txt", "/workspace/moved/a.txt"], paths);
        Assert.Contains(Events(), e => e.Op == VfsOps.Link && e.NewPath == "/workspace/b.txt");
    }

    [Fact]
    public void No_other_operation_gets_around_a_rule_on_a_files_content()
    {
        using var p = Hooked(new VfsInterception { Rules = [Block("/workspace/keep.txt", VfsOps.Write)] });
        var created = p.Create(Root, "keep.txt").Value; // create is allowed; writing is not
        var keep = created.Entry.NodeId;
        Assert.Equal(Errno.EPERM, p.Write(keep, created.Handle, 0, B("precious")).Error);
        p.Release(keep, created.Handle);
        var other = p.WriteFile(Root, "other.txt", "junk");

        Assert.Equal(Errno.EPERM, p.SetAttr(keep, new VfsSetAttr { Size = 0 }).Error); // truncate
        Assert.Equal(Errno.EPERM, p.Open(keep, OpenFlags.WriteOnly | OpenFlags.Truncate).Error); // O_TRUNC
        Assert.Equal(Errno.EPERM, p.Rename(Root, "other.txt", Root, "keep.txt")); // replace by rename
        var handle = p.Open(keep, OpenFlags.ReadOnly).Value; // reading is fine
        Assert.Equal(Errno.EPERM, p.Fallocate(keep, handle, 0, 0, 4096));
        Assert.Equal("junk", p.ReadAll(p.Lookup(Root, "other.txt").Value.NodeId));
    }

    [Fact]
    public void A_hard_link_made_elsewhere_does_not_open_a_way_around_a_rule_on_the_files_path()
    {
        using var p = Hooked(new VfsInterception { Rules = [Block("/workspace/secret/**", VfsOps.Write)] });
        var secret = p.Mkdir(Root, "secret").Value.NodeId;
        var pub = p.Mkdir(Root, "public").Value.NodeId;
        var file = p.Create(secret, "key").Value;
        p.Release(file.Entry.NodeId, file.Handle);

        // The link is allowed (no rule on link), but the file keeps its protected name.
        var linked = p.Link(file.Entry.NodeId, pub, "innocent").Value.NodeId;
        Assert.Equal(file.Entry.NodeId, linked);
        Assert.Equal(file.Entry.NodeId, p.Lookup(pub, "innocent").Value.NodeId);
        var handle = p.Open(linked, OpenFlags.WriteOnly).Value;
        Assert.Equal(Errno.EPERM, p.Write(linked, handle, 0, B("pwned")).Error);
        Assert.Equal(Errno.EPERM, p.SetAttr(linked, new VfsSetAttr { Size = 0 }).Error);

        // Once the protected name is gone, the file is an ordinary file under its other name.
        Assert.Equal(Errno.None, p.Unlink(secret, "key"));
        Assert.Equal(5, p.Write(linked, handle, 0, B("fine!")).Value);
    }

    [Fact]
    public void Nothing_a_rule_covers_can_be_renamed_out_of_its_reach_or_in_under_it()
    {
        using var p = Hooked(new VfsInterception { Rules = [Block("/workspace/secret/*.key", VfsOps.Read, VfsOps.Write)] });
        var secret = p.Mkdir(Root, "secret").Value.NodeId;
        p.WriteFile(secret, "notes.txt", "free"); // not covered by the rule
        var key = p.Create(secret, "id.key").Value;
        p.Release(key.Entry.NodeId, key.Handle);

        Assert.Equal(Errno.EPERM, p.Rename(secret, "id.key", Root, "id.txt")); // the file itself
        Assert.Equal(Errno.EPERM, p.Rename(Root, "secret", Root, "open")); // its folder (a *.key may be below)
        Assert.Equal(Errno.EPERM, p.Rename(secret, "notes.txt", secret, "n.key")); // in under the rule
        Assert.True(p.Mkdir(Root, "other").IsOk);
        Assert.Equal(Errno.None, p.Rename(Root, "other", Root, "elsewhere")); // nothing covered there
        Assert.Contains(Events(), e => e.Op == VfsOps.Rename && e.BlockedBy!.Contains("/workspace/secret/*.key", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_successful_operation_is_an_event_with_the_fields_the_sdks_read_and_a_line_in_events_jsonl()
    {
        using (var p = Hooked(new VfsInterception { EmitEvents = true }))
        {
            var created = p.Create(Root, "notes.md", 0x1A4).Value;
            p.Write(created.Entry.NodeId, created.Handle, 0, B("hello"));
            p.Release(created.Entry.NodeId, created.Handle);
            p.Rename(Root, "notes.md", Root, "README.md");
            p.Unlink(Root, "README.md");
        }

        var events = Events();
        Assert.Equal(
            [(VfsOps.Create, "/workspace/notes.md"), (VfsOps.Write, "/workspace/notes.md"), (VfsOps.Close, "/workspace/notes.md"),
             (VfsOps.Rename, "/workspace/notes.md"), (VfsOps.Remove, "/workspace/README.md")],
            events.Select(e => (e.Op, e.Path)));
        var write = events[1];
        Assert.Equal((5L, 0x1A4u, Guest.Uid, Guest.Gid), (write.Size, write.Mode, write.Uid, write.Gid));
        Assert.Equal("/workspace/README.md", events[3].NewPath);
    }

    [Fact]
    public async Task Events_reach_events_jsonl_as_typed_lines()
    {
        using (var p = Hooked(new VfsInterception { EmitEvents = true, Rules = [Block("/workspace/x", VfsOps.Mkdir)] }))
        {
            p.Mkdir(Root, "x");
            p.Mkdir(Root, "y");
        }

        await _log.DisposeAsync();
        var lines = File.ReadAllLines(Path.Combine(_dir, "events.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal(("file", "mkdir", "/workspace/x", true), (lines[0].GetProperty("type").GetString(), lines[0].GetProperty("op").GetString(), lines[0].GetProperty("path").GetString(), lines[0].GetProperty("blocked").GetBoolean()));
        Assert.Equal("/workspace/y", lines[1].GetProperty("path").GetString());
        Assert.False(lines[1].TryGetProperty("blocked", out _));
    }

    [Fact]
    public void A_hook_that_throws_or_overruns_blocks_and_one_that_allows_lets_through()
    {
        var seen = new List<VfsHookRequest>();
        using var p = Hooked(new VfsInterception
        {
            LocalHooks =
            [
                new VfsLocalHook { Rule = new VfsHookRule { Name = "thrower", Ops = [VfsOps.Mkdir], Path = "/workspace/boom" }, Decide = _ => throw new InvalidOperationException("bug in hook") },
                new VfsLocalHook { Rule = new VfsHookRule { Name = "sleeper", Ops = [VfsOps.Mkdir], Path = "/workspace/slow", TimeoutMs = 100 }, Decide = _ => { Thread.Sleep(2000); return VfsHookAction.Allow; } },
                new VfsLocalHook
                {
                    Rule = new VfsHookRule { Name = "judge", Ops = [VfsOps.Mkdir], Path = "/workspace/*" },
                    Decide = r =>
                    {
                        lock (seen)
                        {
                            seen.Add(r);
                        }

                        return r.Path.EndsWith("/no", StringComparison.Ordinal) ? VfsHookAction.Block : VfsHookAction.Allow;
                    },
                },
            ],
        });
        Assert.Equal(Errno.EPERM, p.Mkdir(Root, "boom").Error);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(Errno.EPERM, p.Mkdir(Root, "slow").Error);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"the timeout was not applied: {watch.Elapsed}");
        Assert.Equal(Errno.EPERM, p.Mkdir(Root, "no").Error);
        Assert.True(p.Mkdir(Root, "yes").IsOk);
        Assert.Contains(seen, r => r.Path == "/workspace/yes" && r.Op == VfsOps.Mkdir);
        Assert.Contains(Events(), e => e.Path == "/workspace/boom" && e.BlockedBy!.Contains("failed or timed out", StringComparison.Ordinal));
    }

    [Fact]
    public void A_mutate_hook_replaces_what_is_written_and_the_guest_sees_its_own_count()
    {
        using var p = Hooked(new VfsInterception
        {
            LocalHooks =
            [
                new VfsLocalHook
                {
                    Rule = new VfsHookRule { Name = "redact", Ops = [VfsOps.Write], Path = "/workspace/*.log" },
                    MutateWrite = w => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(w.Data.Span).Replace("hunter2", "*******", StringComparison.Ordinal)),
                },
                new VfsLocalHook { Rule = new VfsHookRule { Name = "broken", Ops = [VfsOps.Write], Path = "/workspace/bad.log" }, MutateWrite = _ => throw new IOException("no") },
            ],
        });
        var log = p.Create(Root, "app.log").Value;
        Assert.Equal(16, p.Write(log.Entry.NodeId, log.Handle, 0, B("pass=hunter2 ok\n")).Value);
        Assert.Equal("pass=******* ok\n", p.ReadAll(log.Entry.NodeId));
        var plain = p.WriteFile(Root, "app.txt", "hunter2");
        Assert.Equal("hunter2", p.ReadAll(plain));

        var bad = p.Create(Root, "bad.log").Value;
        Assert.Equal(Errno.EPERM, p.Write(bad.Entry.NodeId, bad.Handle, 0, B("x")).Error);
    }

    [Fact]
    public async Task Observers_see_matching_operations_off_the_request_thread()
    {
        var seen = new System.Collections.Concurrent.ConcurrentQueue<FileEvent>();
        using var p = Hooked(new VfsInterception
        {
            LocalHooks = [new VfsLocalHook { Rule = new VfsHookRule { Phase = VfsHookPhase.After, Ops = [VfsOps.Write], Path = "/workspace/**" }, Observe = seen.Enqueue }],
        });
        var dir = p.Mkdir(Root, "d").Value.NodeId;
        p.WriteFile(dir, "f", "abc");
        for (var i = 0; i < 500 && seen.IsEmpty; i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        var e = Assert.Single(seen);
        Assert.Equal(("/workspace/d/f", 3L), (e.Path, e.Size));
        Assert.Empty(Events()); // EmitEvents is off: observers only
    }

    [Fact]
    public void Forgotten_nodes_leave_the_path_table()
    {
        using var p = Hooked(new VfsInterception { EmitEvents = true });
        var nodes = Enumerable.Range(0, 50).Select(i => p.WriteFile(Root, $"f{i}", "x")).ToList();
        Assert.Equal(50, p.TrackedNodes);
        foreach (var node in nodes)
        {
            p.Forget(node, 1);
        }

        Assert.Equal(0, p.TrackedNodes);
    }

    [Fact]
    public void Rules_are_checked_before_use()
    {
        Assert.Throws<VfsHookRuleException>(() => new VfsInterception { Rules = [new VfsHookRule { Ops = ["frobnicate"] }] }.Validate());
        Assert.Throws<VfsHookRuleException>(() => new VfsInterception { Rules = [new VfsHookRule { Phase = VfsHookPhase.After, Action = VfsHookAction.Block }] }.Validate());
        Assert.Throws<VfsHookRuleException>(() => new VfsInterception { LocalHooks = [new VfsLocalHook { Rule = new VfsHookRule() }] }.Validate());
        Assert.Throws<VfsHookRuleException>(() => new VfsInterception { LocalHooks = [new VfsLocalHook { Rule = new VfsHookRule { Phase = VfsHookPhase.After }, Decide = _ => VfsHookAction.Allow }] }.Validate());
    }
}
