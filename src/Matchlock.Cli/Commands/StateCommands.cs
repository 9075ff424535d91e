using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Matchlock.Core;
using Matchlock.Core.State;

namespace Matchlock.Cli.Commands;

/// <summary>
/// The VM state commands (docs/COMPATIBILITY.md "CLI"): <c>list|ls</c>, <c>get</c>, <c>inspect</c>, <c>rm</c>,
/// <c>prune</c>, <c>gc</c>, <c>log</c> (the command's output, <see cref="CommandLog"/>; <c>--console</c>: vm.log). They read and reconcile <c>state.db</c> (docs/ARCHITECTURE.md D9); none of them
/// needs the VM's owner.
/// </summary>
internal static class StateCommands
{
    public static IEnumerable<Command> Create() => [List(), Get(), Inspect(), Remove(), Prune(), Collect(), Log()];

    private static Command List()
    {
        var running = new Option<bool>("--running") { Description = "Only running VMs" };
        var command = new Command("list", "List VMs: ID STATUS IMAGE CREATED PID") { running };
        command.Aliases.Add("ls");
        command.SetAction(parse => Guard(() =>
        {
            using var store = VmStateStore.Open();
            var rows = store.List()
                .Where(vm => !parse.GetValue(running) || vm.Status == VmStatus.Running)
                .Select(vm => new[]
                {
                    vm.Id, vm.Status.Name(), vm.Image,
                    vm.Created.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    vm.OwnerPid.ToString(CultureInfo.InvariantCulture),
                })
                .ToList();
            Table.Write(Console.Out, ["ID", "STATUS", "IMAGE", "CREATED", "PID"], rows);
            return 0;
        }));
        return command;
    }

    private static Command Get()
    {
        var id = new Argument<string>("id") { Description = "VM id (vm-xxxxxxxx)" };
        var command = new Command("get", "Print a VM's state as JSON") { id };
        command.SetAction(parse => Guard(() =>
        {
            using var store = VmStateStore.Open();
            VmStateJson.WriteGet(store.GetRequired(parse.GetValue(id)!));
            return 0;
        }));
        return command;
    }

    private static Command Inspect()
    {
        var id = new Argument<string>("id") { Description = "VM id (vm-xxxxxxxx)" };
        var command = new Command("inspect", "Print a VM's state, lifecycle (with what it holds) and history as JSON: {vm, lifecycle, history}") { id };
        command.Aliases.Add("stat");
        command.SetAction(parse => Guard(() =>
        {
            using var store = VmStateStore.Open();
            VmStateJson.WriteInspect(store, store.GetRequired(parse.GetValue(id)!));
            return 0;
        }));
        return command;
    }

    private static Command Remove()
    {
        var ids = new Argument<string[]>("id") { Arity = ArgumentArity.ZeroOrMore, Description = "VM ids to remove" };
        var stopped = new Option<bool>("--stopped") { Description = "Remove every VM that is not running (stopped, failed, crashed)" };
        var command = new Command("rm", "Remove VMs: release what they hold (VMM, network namespace, files), then their records") { ids, stopped };
        command.SetAction(async (parse, ct) =>
        {
            var given = parse.GetValue(ids) ?? [];
            if (given.Length == 0 && !parse.GetValue(stopped))
            {
                Console.Error.WriteLine("matchlock: VM ID required (or use --stopped); `matchlock ls` lists them");
                return ExitCodes.MatchlockError;
            }

            if (given.Length > 0 && parse.GetValue(stopped))
            {
                Console.Error.WriteLine("matchlock: give VM ids or --stopped, not both");
                return ExitCodes.MatchlockError;
            }

            return await GuardAsync(async () =>
            {
                using var store = VmStateStore.Open();
                var targets = given.Length > 0 ? given : [.. store.List().Where(vm => !vm.Status.NeedsOwner()).Select(vm => vm.Id)];
                return await RemoveAllAsync(store, targets, "Removed", ct);
            });
        });
        return command;
    }

    private static Command Prune()
    {
        var command = new Command("prune", "Reconcile: release and forget every VM whose owner is gone (stopped, failed, crashed)");
        command.SetAction(async (_, ct) => await GuardAsync(async () =>
        {
            using var store = VmStateStore.Open();
            var targets = store.List().Where(vm => !vm.Status.NeedsOwner()).Select(vm => vm.Id).ToList();
            var pruned = 0;
            var status = await ReconcileAllAsync(targets, id => VmReconciler.RemoveAsync(store, id, ct), id => $"kept the record of {id}", id =>
            {
                pruned++;
                Console.WriteLine($"Pruned {id}");
            });
            // The original's count line, on stdout as it prints it.
            Console.WriteLine($"Pruned {pruned} VMs");
            return status;
        }));
        return command;
    }

    private static Command Collect()
    {
        var ids = new Argument<string[]>("id") { Arity = ArgumentArity.ZeroOrMore, Description = "VM ids (default: every VM whose owner is gone)" };
        var force = new Option<bool>("--force-running") { Description = "Also reclaim VMs whose owner still runs (the owner is killed first: for hung owners)" };
        var command = new Command(
            "gc",
            "Release what stopped, failed or crashed VMs still hold (QEMU, network namespace, disks, sockets), keeping their records and logs until rm")
        { ids, force };
        command.SetAction(async (parse, ct) => await GuardAsync(async () =>
        {
            var given = parse.GetValue(ids) ?? [];
            var forceRunning = parse.GetValue(force);
            using var store = VmStateStore.Open();
            var targets = given.Length > 0
                ? given
                : [.. store.List().Where(vm => vm.RecordedStatus != VmStatus.Cleaned && (forceRunning || !vm.Status.NeedsOwner())).Select(vm => vm.Id)];
            var status = await ReconcileAllAsync(targets, id => VmReconciler.CollectAsync(store, id, forceRunning, ct), id => id, Console.WriteLine);
            if (given.Length == 0)
            {
                // Leftovers of --rm runs killed hard have no record: swept by what they left.
                foreach (var id in await VmReconciler.SweepOrphansAsync(MatchlockPaths.VmsDir, VmStateStore.DefaultPath, ct))
                {
                    Console.WriteLine(id);
                }
            }

            return status;
        }));
        return command;
    }

    private static Command Log()
    {
        var id = new Argument<string>("id") { Description = "VM id (vm-xxxxxxxx)" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing as the log grows, until the VM stops" };
        var console = new Option<bool>("--console") { Description = "The guest's console (kernel and init messages) instead of the command's output" };
        var command = new Command("log", "Print the output of a long-lived sandbox's command (stdout and stderr as they came); --console: the guest console") { id, follow, console };
        command.SetAction(async (parse, ct) => await GuardAsync(async () =>
        {
            using var store = VmStateStore.Open();
            var vm = store.GetRequired(parse.GetValue(id)!);
            var path = Path.Combine(vm.VmDir, parse.GetValue(console) ? "vm.log" : CommandLog.FileName);
            if (!Directory.Exists(vm.VmDir))
            {
                throw new VmStateException($"{vm.Id} has no logs ({vm.VmDir} is gone: the VM was removed with its directory)");
            }

            await using var stdout = Console.OpenStandardOutput();
            var log = OpenShared(path);
            try
            {
                if (log is not null)
                {
                    await log.CopyToAsync(stdout, ct);
                }

                while (parse.GetValue(follow) && store.Get(vm.Id) is { } now && now.Status.NeedsOwner())
                {
                    await Task.Delay(200, ct);
                    log ??= OpenShared(path); // a command's log appears when it starts
                    if (log is not null)
                    {
                        await log.CopyToAsync(stdout, ct);
                    }
                }

                if (log is not null)
                {
                    await log.CopyToAsync(stdout, ct); // what was written while it stopped
                }
            }
            finally
            {
                if (log is not null)
                {
                    await log.DisposeAsync();
                }
            }

            return 0;
        }));
        return command;
    }

    /// <summary>A log another process still writes; null while it does not exist (no command: nothing to print).</summary>
    private static FileStream? OpenShared(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private static Task<int> RemoveAllAsync(VmStateStore store, IReadOnlyList<string> ids, string verb, CancellationToken ct) =>
        ReconcileAllAsync(ids, id => VmReconciler.RemoveAsync(store, id, ct), id => $"kept the record of {id}", id => Console.WriteLine($"{verb} {id}"));

    /// <summary>
    /// Runs one reconciliation per VM (rm, prune, gc): reports each id that was released through
    /// <paramref name="released"/> (the original's <c>Removed ID</c>, <c>Pruned ID</c>), and for the
    /// others what is still held, or why it was refused; a non-zero status when any was not.
    /// </summary>
    private static async Task<int> ReconcileAllAsync(IReadOnlyList<string> ids, Func<string, Task<VmRemoval>> reconcile, Func<string, string> whenLeft, Action<string> released)
    {
        var status = 0;
        foreach (var id in ids)
        {
            try
            {
                var removal = await reconcile(id);
                if (removal.Removed)
                {
                    released(id);
                }
                else
                {
                    CliErrors.Warn($"{whenLeft(id)}: still left: {string.Join("; ", removal.Leftovers)}");
                    status = ExitCodes.MatchlockError;
                }
            }
            catch (VmStateException ex)
            {
                CliErrors.Warn(ex.Message);
                status = ExitCodes.MatchlockError;
            }
        }

        return status;
    }

    private static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return CliErrors.Report(ex);
        }
    }

    private static async Task<int> GuardAsync(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return CliErrors.Report(ex);
        }
    }
}
