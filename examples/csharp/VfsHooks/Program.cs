// VFS hooks: a host rule the guest cannot get past, and hooks run in this process. /workspace is
// an in-memory file system. The host blocks creating /workspace/blocked.txt (the guest gets
// EPERM); an action hook refuses the SDK's own WriteFileAsync to /workspace/secret*.txt; a mutate
// hook rewrites what WriteFileAsync sends to /workspace/notes.txt; an after-hook records the
// host's `write` events under /workspace.
using System.Collections.Concurrent;
using System.Text;
using Matchlock.Examples;
using Matchlock.Sdk;

const string Rewritten = "rewritten by the SDK's mutate hook\n";

return await Example.RunAsync(async ct =>
{
    var events = new ConcurrentQueue<FileEvent>();
    var options = new SandboxOptions
    {
        Image = Example.Image,
        Mounts = new Dictionary<string, VfsMount> { ["/workspace"] = VfsMount.Memory() },
        VfsInterception = new VfsInterception
        {
            Rules =
            [
                // On the host, for every program in the guest.
                new VfsHookRule { Name = "no blocked.txt", Phase = VfsHookPhase.Before, Ops = [VfsOps.Create], Path = "/workspace/blocked.txt", Action = VfsHookAction.Block },

                // In this process, for this SDK's own file calls.
                new VfsHookRule { Name = "no secrets from the SDK", Ops = [VfsOps.Write], Path = "/workspace/secret*.txt", ActionHook = _ => VfsHookAction.Block },
                new VfsHookRule { Name = "rewrite notes", Path = "/workspace/notes.txt", MutateHook = _ => Encoding.UTF8.GetBytes(Rewritten) },

                // After the fact, fed by the host's file events (EmitEvents is turned on for it).
                new VfsHookRule
                {
                    Name = "record writes",
                    Ops = [VfsOps.Write],
                    Path = "/workspace/**",
                    Hook = (e, _) =>
                    {
                        events.Enqueue(e);
                        return ValueTask.CompletedTask;
                    },
                },
            ],
        },
    };

    await using var sandbox = await MatchlockClient.LaunchAsync(options, Example.Client, ct);
    Console.WriteLine($"sandbox {sandbox.Id} is up, /workspace is in memory");

    var blocked = await sandbox.ExecAsync("echo hi > /workspace/blocked.txt", cancellationToken: ct);
    Console.WriteLine($"guest: {blocked.StderrText.Trim()}");
    Example.Check(!blocked.Succeeded && blocked.StderrText.Contains("Operation not permitted", StringComparison.Ordinal), "the host rule refused the guest's create of blocked.txt");

    try
    {
        await sandbox.WriteFileAsync("/workspace/secret.txt", "token=123", cancellationToken: ct);
        Example.Check(false, "the action hook blocked WriteFileAsync(secret.txt)");
    }
    catch (MatchlockVfsHookBlockedException ex)
    {
        Example.Check(ex.HookName == "no secrets from the SDK", $"the action hook blocked WriteFileAsync: {ex.Message}");
    }

    Example.Check(!(await sandbox.ExecAsync("test -e /workspace/secret.txt", cancellationToken: ct)).Succeeded, "secret.txt was never written");

    await sandbox.WriteFileAsync("/workspace/notes.txt", "the original text\n", cancellationToken: ct);
    var cat = await sandbox.ExecAsync("cat /workspace/notes.txt", cancellationToken: ct);
    Console.WriteLine($"guest: cat notes.txt -> {cat.StdoutText.Trim()}");
    Example.Check(cat.StdoutText == Rewritten, "the mutate hook replaced what WriteFileAsync sent");

    Example.Check(await SeenAsync("/workspace/notes.txt"), "the after-hook saw the write of notes.txt");
    await sandbox.ExecAsync("echo from the guest > /workspace/guest.txt", cancellationToken: ct);
    Example.Check(await SeenAsync("/workspace/guest.txt"), "the after-hook saw the guest's own write of guest.txt");
    foreach (var e in events)
    {
        Console.WriteLine($"  event: {e.Op} {e.Path} ({e.Size} bytes)");
    }

    Example.Check(!events.Any(e => e.Path.Contains("blocked", StringComparison.Ordinal) || e.Path.Contains("secret", StringComparison.Ordinal)), "refused operations are not events");

    async Task<bool> SeenAsync(string path)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(15); DateTime.UtcNow < deadline; await Task.Delay(50, ct))
        {
            if (events.Any(e => e.Path == path))
            {
                return true;
            }
        }

        return false;
    }
});
