using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Matchlock.Cli.Terminal;
using Matchlock.Core;
using Matchlock.Core.Diagnostics;
using Matchlock.Core.Interop;
using Matchlock.Core.Owner;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Microsoft.Extensions.Logging;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock run --rm=false</c> and <c>run -d</c>: this process becomes the owner of a
/// long-lived sandbox (docs/ARCHITECTURE.md D9), serving its control socket until <c>matchlock kill</c>,
/// SIGINT/SIGTERM/SIGHUP, or the VM's own exit; then it stops the guest with the graceful
/// shutdown time and removes everything.
/// </summary>
/// <remarks>
/// <c>-d</c> re-executes this binary (<see cref="Environment.ProcessPath"/>: under NativeAOT the
/// binary itself) with the same arguments and <see cref="DetachedVariable"/> set. The child starts
/// a new session (no terminal, no Ctrl-C from it), boots, and prints one ready line on its stdout,
/// a pipe to the parent; then it points its stdio at /dev/null. The parent relays the child's
/// stderr until that line, prints the id and exits 0, or, if the child exits first, its status.
/// </remarks>
internal sealed class OwnerSession(
    SandboxSpec spec,
    Core.State.VmConfig config,
    ExecSpec? exec,
    TimeSpan grace,
    IReadOnlyList<PortMapping> publish,
    IReadOnlyList<IPAddress>? addresses)
{
    private const string DetachedVariable = "MATCHLOCK_OWNER_DETACHED";

    /// <summary>The owner's bounded log in the VM directory (what it did, every failure it survived).</summary>
    public const string OwnerLogFileName = "owner.log";
    private const string ReadyPrefix = "matchlock-owner-ready ";

    public static bool IsDetachedChild => Environment.GetEnvironmentVariable(DetachedVariable) == "1";

    /// <summary>The parent of <c>run -d</c>: starts the owner and returns once it runs.</summary>
    public static async Task<int> DetachAsync(CancellationToken ct)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's path to re-execute it"))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in Program.Args)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment[DetachedVariable] = "1";
        OwnerNative.MarkInheritedDescriptorsCloseOnExec(); // the owner outlives us: it must not keep our caller's files
        using var child = Process.Start(psi) ?? throw new InvalidOperationException("could not start the sandbox owner");
        child.StandardInput.Close();
        var stderr = Console.OpenStandardError();
        var relay = RelayAsync(child.StandardError.BaseStream, stderr);
        try
        {
            while (await child.StandardOutput.ReadLineAsync(ct) is { } line)
            {
                if (!line.StartsWith(ReadyPrefix, StringComparison.Ordinal))
                {
                    Console.Error.WriteLine(line); // what the owner has to say before it is ready (e.g. published ports)
                    continue;
                }

                var id = line[ReadyPrefix.Length..];
                Console.Out.WriteLine(id);
                Console.Out.Flush();
                Console.Error.WriteLine($"connect: matchlock exec {id} -- sh\nstop: matchlock kill {id}");
                return 0;
            }
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C here while the owner boots: it is in its own session, so stop it ourselves
            // (its QEMU dies with it through the parent-death signal; the next run sweeps the rest).
            child.Kill();
            Console.Error.WriteLine("matchlock: interrupted while starting the sandbox");
            return ExitCodes.Interrupted;
        }

        // Its stdout ended without the ready line: the owner failed and said why on stderr.
        await child.WaitForExitAsync(CancellationToken.None);
        await relay.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        return child.ExitCode != 0 ? child.ExitCode : ExitCodes.MatchlockError;
    }

    public async Task<int> RunAsync()
    {
        var detached = IsDetachedChild;
        if (detached && !OwnerNative.StartNewSession())
        {
            // Only a group leader gets here, i.e. not the child DetachAsync starts (someone set the variable by hand).
            Console.Error.WriteLine("matchlock: could not start a new session (already a process group leader); the owner stays in this one");
        }

        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; stop.Cancel(); });

        // owner.log in the VM directory (it exists once the sandbox does; earlier lines wait for it).
        // A detached owner's stderr is /dev/null once it is ready, so its log goes only there.
        using var logFile = new LogFile();
        using var logging = MatchlockLogging.Create(detached ? null : CliLogging.ConsoleLevel, logFile, CliLogging.ConsoleLevel ?? LogLevel.Information);
        var (sandbox, ports, failed) = await SandboxLaunch.StartAsync(spec, config, publish, addresses, logging, stop.Token);
        if (sandbox is null)
        {
            return failed;
        }

        logFile.Open(Path.Combine(sandbox.Directory, OwnerLogFileName));

        await using var portsScope = ports;
        SandboxOwner owner;
        try
        {
            owner = SandboxOwner.Start(sandbox, grace);
        }
        catch (Exception ex)
        {
            await sandbox.DisposeAsync();
            return CliErrors.Report(ex);
        }

        SandboxOwner.StopReason reason;
        var command = Task.CompletedTask;
        await using (owner)
        {
            if (sandbox.AccelNotice is { } notice)
            {
                Console.Error.WriteLine(notice);
            }

            // Detached, through the ready pipe: the parent prints it before it returns, in order.
            ports?.Attach(sandbox, detached ? Console.Out : Console.Error);
            if (exec is not null)
            {
                command = StartCommand(sandbox, exec, detached);
            }

            if (detached)
            {
                Console.Out.WriteLine(ReadyPrefix + sandbox.Id);
                Console.Out.Flush();
                OwnerNative.RedirectStdioToDevNull();
            }
            else
            {
                Console.Error.WriteLine($"matchlock: sandbox {sandbox.Id} is running\nconnect: matchlock exec {sandbox.Id} -- sh\nstop: matchlock kill {sandbox.Id}");
            }

            reason = await owner.WaitAsync(stop.Token);
            if (ports is not null)
            {
                await ports.DisposeAsync(); // no new connections while the guest stops
            }

            Console.Error.WriteLine(reason == SandboxOwner.StopReason.VmExited
                ? $"matchlock: the VM of sandbox {sandbox.Id} exited by itself; cleaning up"
                : $"matchlock: stopping sandbox {sandbox.Id} (graceful shutdown {grace.TotalSeconds:0.###} s)");
        }

        // Let an attached command notice the end and give the terminal its modes back.
        await Task.WhenAny(command, Task.Delay(TimeSpan.FromSeconds(2)));
        return reason == SandboxOwner.StopReason.VmExited ? ExitCodes.MatchlockError : 0;
    }

    /// <summary>
    /// The command given to a long-lived <c>run</c> starts in the background of the owner. In the
    /// foreground it is attached to this terminal (with <c>-i</c>/<c>-it</c> it gets stdin and a
    /// PTY that follows the window's size; signals to this process stop the sandbox, not the
    /// command) and its output is also copied to <see cref="CommandLog"/>; detached, it has no
    /// stdin and its output goes only there. Either way the sandbox keeps running when it ends.
    /// </summary>
    private static Task StartCommand(Sandbox sandbox, ExecSpec exec, bool detached)
    {
        return Task.Run(async () =>
        {
            await using var log = CommandLog.Open(sandbox.Directory);
            if (detached)
            {
                exec = exec with { Tty = false, Stdin = false };
            }

            {
                try
                {
                    var attached = new AttachedExec(exec.Tty, exec.Stdin, _ => Task.CompletedTask);
                    var outcome = await attached.RunAsync(
                        async ct => await sandbox.StartExecAsync(exec, ct),
                        CancellationToken.None,
                        stdout: detached ? log : CommandLog.Tee(Console.OpenStandardOutput(), log),
                        stderr: detached ? log : CommandLog.Tee(Console.OpenStandardError(), log));
                    if (!detached)
                    {
                        Console.Error.WriteLine($"matchlock: the command exited with status {outcome.Result.ExitCode}; sandbox {sandbox.Id} keeps running (stop: matchlock kill {sandbox.Id})");
                    }
                }
                catch (Exception ex) when (ex is MatchlockException or IOException)
                {
                    // The sandbox stopped under the command: the owner reports that.
                }
            }
        });
    }

    private static async Task RelayAsync(Stream from, Stream to)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await from.ReadAsync(buffer)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n));
            await to.FlushAsync();
        }
    }
}
