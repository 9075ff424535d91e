using System.CommandLine;
using System.Runtime.InteropServices;
using Matchlock.Cli.Terminal;
using Matchlock.Core.Owner;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol.Messages;

namespace Matchlock.Cli.Commands;

/// <summary>
/// Clients of a long-lived sandbox's owner (docs/ARCHITECTURE.md D9): <c>exec</c>, <c>allow-list</c>, <c>kill</c>.
/// They talk to <c>~/.matchlock/vms/&lt;id&gt;/control.sock</c>; an unknown id or a gone owner
/// is matchlock's failure (125), otherwise <c>exec</c> exits with the command's status.
/// </summary>
internal static class OwnerCommands
{
    public static Command CreateExec()
    {
        var interactive = new Option<bool>("--interactive", "-i") { Description = "Keep stdin open and stream it to the command" };
        var tty = new Option<bool>("--tty", "-t") { Description = "Allocate a pseudo-terminal (with -i)" };
        var workdir = new Option<string?>("--workdir", "-w") { Description = "Working directory in the guest (default: the image's)" };
        var user = new Option<string?>("--user", "-u") { Description = "uid, uid:gid or user name (default: the image's)" };
        var env = new Option<string[]>("--env", "-e") { Description = "Set KEY=VALUE (KEY alone: take it from this environment)" };
        var id = new Argument<string>("id") { Description = "The sandbox's VM id (printed by run -d / --rm=false)" };
        var command = new Argument<string[]>("command") { Arity = ArgumentArity.OneOrMore, Description = "Command and arguments (put them after --)" };
        var cmd = new Command("exec", "Run a command in a running long-lived sandbox") { interactive, tty, workdir, user, env, id, command };
        cmd.SetAction((parse, ct) =>
        {
            try
            {
                EnvFlags.RequireBareNamesSet(parse.GetValue(env) ?? []);
            }
            catch (ArgumentException ex)
            {
                return Task.FromResult(CliErrors.Report(ex));
            }

            var stdin = parse.GetValue(interactive);
            var size = stdin && parse.GetValue(tty) ? RawTerminal.GetSize() : null;
            var spec = new ExecSpec
            {
                Argv = parse.GetValue(command) ?? [],
                // Bare KEYs from this environment; the owner lays these over the image's.
                Env = EnvironmentBuilder.Build([], parse.GetValue(env) ?? [], Environment.GetEnvironmentVariable),
                WorkingDir = parse.GetValue(workdir),
                User = parse.GetValue(user),
                Stdin = stdin,
                Tty = stdin && parse.GetValue(tty), // -t alone does nothing, as with run
                Rows = size?.Rows ?? TerminalDefaults.Rows,
                Cols = size?.Cols ?? TerminalDefaults.Cols,
            };
            return ExecAsync(parse.GetValue(id)!, spec);
        });
        return cmd;
    }

    public static Command CreateAllowList()
    {
        var cmd = new Command("allow-list", "Change the allow-list of a running long-lived sandbox");
        foreach (var (name, add) in new[] { ("add", true), ("delete", false) })
        {
            var id = new Argument<string>("id") { Description = "The sandbox's VM id" };
            var hosts = new Argument<string[]>("hosts") { Arity = ArgumentArity.OneOrMore, Description = "Host names or patterns (comma lists accepted)" };
            var sub = new Command(name, add ? "Allow hosts (globs like *.example.com)" : "Remove hosts from the allow-list") { id, hosts };
            sub.SetAction((parse, ct) => ChangeAllowListAsync(parse.GetValue(id)!, parse.GetValue(hosts) ?? [], add, ct));
            cmd.Subcommands.Add(sub);
        }

        return cmd;
    }

    public static Command CreateKill()
    {
        var ids = new Argument<string[]>("id") { Arity = ArgumentArity.ZeroOrMore, Description = "VM ids of long-lived sandboxes" };
        var all = new Option<bool>("--all") { Description = "Stop every running long-lived sandbox" };
        var cmd = new Command("kill", "Stop long-lived sandboxes (their processes get the --graceful-shutdown time) and remove them") { ids, all };
        cmd.SetAction(async (parse, ct) =>
        {
            var given = parse.GetValue(ids) ?? [];
            if (given.Length == 0 && !parse.GetValue(all))
            {
                Console.Error.WriteLine("matchlock: VM ID required (or use --all); `matchlock ls --running` lists them");
                return ExitCodes.MatchlockError;
            }

            if (given.Length > 0 && parse.GetValue(all))
            {
                Console.Error.WriteLine("matchlock: give VM ids or --all, not both");
                return ExitCodes.MatchlockError;
            }

            var targets = given.Length > 0 ? given : RunningLongLived();
            var status = 0;
            foreach (var id in targets)
            {
                try
                {
                    await using var client = await OwnerClient.ConnectAsync(id, cancellationToken: ct);
                    await client.KillAsync(TimeSpan.FromMinutes(2), ct);
                    Console.Out.WriteLine($"Killed {id}");
                }
                catch (Exception ex)
                {
                    status = Report(ex);
                }
            }

            return status;
        });
        return cmd;
    }

    /// <summary>Running sandboxes that have an owner serving a control socket (foreground `--rm` runs have none: stop those with Ctrl-C).</summary>
    private static string[] RunningLongLived()
    {
        using var state = Matchlock.Core.State.VmStateStore.Open();
        return [.. state.List()
            .Where(vm => vm.Status == Matchlock.Core.State.VmStatus.Running && File.Exists(Path.Combine(vm.VmDir, "control.sock")))
            .Select(vm => vm.Id)];
    }

    private static async Task<int> ChangeAllowListAsync(string id, string[] hosts, bool add, CancellationToken ct)
    {
        try
        {
            await using var client = await OwnerClient.ConnectAsync(id, cancellationToken: ct);
            var list = add ? await client.AllowAsync(hosts, ct) : await client.DisallowAsync(hosts, ct);
            // The original's two lines (docs/COMPATIBILITY.md "CLI", allow-list): what changed, then the whole list.
            var changed = hosts.SelectMany(h => h.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Console.Out.WriteLine($"{(add ? "Added to" : "Removed from")} {id}: {string.Join(",", changed)}");
            Console.Out.WriteLine($"Current allow-list: {string.Join(",", list)}");
            return 0;
        }
        catch (Exception ex)
        {
            return Report(ex);
        }
    }

    private static async Task<int> ExecAsync(string id, ExecSpec spec)
    {
        // The first Ctrl-C (or SIGTERM) goes to the command; a second one abandons it (the owner cancels it).
        var timings = ExecTimings.Current;
        var attached = new AttachedExec(spec.Tty, spec.Stdin, s => s.DisposeAsync().AsTask(), timings is null ? null : timings.Mark);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; OnSignal(2); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; OnSignal(15); });
        try
        {
            await using var client = await OwnerClient.ConnectAsync(id);
            timings?.Mark("connect");
            var outcome = await attached.RunAsync(async ct => await client.StartExecAsync(spec, ct), CancellationToken.None);
            timings?.Report();
            return outcome.Result.ExitCode; // a command that could not start said why on its stderr (127/126)
        }
        catch (Exception ex)
        {
            return Report(ex);
        }

        void OnSignal(int signal)
        {
            if (!attached.Interrupt(signal))
            {
                Environment.Exit(ExitCodes.Interrupted); // not started yet: nothing to stop
            }
        }
    }

    private static int Report(Exception ex)
    {
        if (ex is OwnerUnavailableException or OwnerOperationException or OwnerProtocolException or TimeoutException)
        {
            Console.Error.WriteLine($"matchlock: {ex.Message}");
            return ExitCodes.MatchlockError;
        }

        return CliErrors.Report(ex);
    }
}
