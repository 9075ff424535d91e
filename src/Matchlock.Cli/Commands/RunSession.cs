using System.Net;
using System.Runtime.InteropServices;
using Matchlock.Cli.Terminal;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Cli.Commands;

/// <summary>
/// One <c>matchlock run</c> from boot to teardown, with signal handling: before the command
/// starts, Ctrl-C aborts the boot; while it runs, the first Ctrl-C (or SIGTERM) goes to the
/// command's process group in the guest, a second one stops it (SIGTERM, then SIGKILL).
/// </summary>
internal sealed class RunSession(
    SandboxSpec spec,
    Core.State.VmConfig config,
    ExecSpec exec,
    int? timeoutSeconds,
    IReadOnlyList<PortMapping> publish,
    IReadOnlyList<IPAddress>? addresses)
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(2);
    private readonly CancellationTokenSource _abort = new();

    // A second interrupt stops the command: SIGTERM, SIGKILL after StopGrace.
    private readonly AttachedExec _attached = new(exec.Tty, exec.Stdin, s => s.CancelAsync(StopGrace, CancellationToken.None).AsTask());

    public async Task<int> RunAsync()
    {
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; OnSignal(2); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; OnSignal(15); });
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; OnSignal(1); });

        using var logging = CliLogging.ForConsole();
        var (sandbox, ports, failed) = await SandboxLaunch.StartAsync(spec, config, publish, addresses, logging, _abort.Token);
        if (sandbox is null)
        {
            return failed;
        }

        await using var portsScope = ports;

        await using (sandbox)
        {
            if (sandbox.AccelNotice is { } notice)
            {
                Console.Error.WriteLine(notice);
            }

            ReportTimings(sandbox);
            ports?.Attach(sandbox, Console.Error);
            try
            {
                return await RunCommandAsync(sandbox);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return CliErrors.Report(ex);
            }
            finally
            {
                if (ports is not null)
                {
                    await ports.DisposeAsync(); // before the VM goes: clients get a reset, not a hang
                }

                if (!spec.RemoveOnDispose)
                {
                    Console.Error.WriteLine($"matchlock: kept {sandbox.Directory} (--rm=false)");
                }
            }
        }
    }

    private async Task<int> RunCommandAsync(Sandbox sandbox)
    {
        var outcome = await _attached.RunAsync(
            async ct => await sandbox.StartExecAsync(exec, ct), _abort.Token, timeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : null, StopGrace);
        if (outcome.TimedOut)
        {
            Console.Error.WriteLine($"matchlock: the command was stopped after --timeout {timeoutSeconds} s");
            return ExitCodes.TimedOut;
        }

        return outcome.Result.ExitCode;
    }

    private void OnSignal(int signal)
    {
        if (!_attached.Interrupt(signal))
        {
            _abort.Cancel(); // still booting: abandon the boot, CreateAsync cleans up
        }
    }

    private static void ReportTimings(Sandbox sandbox)
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_DEBUG_TIMINGS") != "1")
        {
            return;
        }

        var t = sandbox.Timings;
        Console.Error.WriteLine(
            $"matchlock: timings host_setup={t.HostSetup.TotalMilliseconds:0} vmm_start={t.VmmStart.TotalMilliseconds:0} " +
            $"vmm_to_hello={t.VmmToHello.TotalMilliseconds:0} kernel={t.Kernel.TotalMilliseconds:0} guest_init={t.GuestInit.TotalMilliseconds:0} " +
            $"configure={t.Configure.TotalMilliseconds:0} total={t.Total.TotalMilliseconds:0} ms; guest: " +
            string.Join(' ', t.GuestPhases.Select(p => $"{p.Key}={p.Value}")));
    }
}
