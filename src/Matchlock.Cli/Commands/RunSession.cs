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
    ExecSpec exec,
    int? timeoutSeconds,
    IReadOnlyList<PortMapping> publish,
    IReadOnlyList<IPAddress>? addresses)
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(2);
    private readonly CancellationTokenSource _abort = new();
    private readonly Lock _lock = new(); // guards _session and _interrupts
    private ExecSession? _session;
    private int _interrupts;

    public async Task<int> RunAsync()
    {
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; OnSignal(2); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; OnSignal(15); });
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; OnSignal(1); });

        using var logging = CliLogging.ForConsole();
        var (sandbox, ports, failed) = await SandboxLaunch.StartAsync(spec, publish, addresses, logging, _abort.Token);
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
        using var raw = exec.Tty ? RawTerminal.TryEnter() : null;
        await using var session = await sandbox.StartExecAsync(exec, _abort.Token);
        lock (_lock)
        {
            _session = session;
        }

        using var winch = exec.Tty
            ? PosixSignalRegistration.Create(PosixSignal.SIGWINCH, ctx =>
            {
                ctx.Cancel = true;
                if (RawTerminal.GetSize() is { } size)
                {
                    _ = session.ResizeAsync(size.Rows, size.Cols, CancellationToken.None).AsTask();
                }
            })
            : null;

        var stdout = Console.OpenStandardOutput();
        var stderr = Console.OpenStandardError();
        var copyOut = StdioStreams.CopyFlushingAsync(session.Stdout, stdout);
        var copyErr = StdioStreams.CopyFlushingAsync(session.Stderr, stderr);
        if (exec.Stdin)
        {
            _ = PumpStdinAsync(session);
        }

        var timedOut = false;
        using var deadline = new CancellationTokenSource();
        if (timeoutSeconds is { } seconds)
        {
            deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        }

        using var onDeadline = deadline.Token.Register(() =>
        {
            timedOut = true;
            _ = session.CancelAsync(StopGrace, CancellationToken.None).AsTask();
        });

        var result = await session.WaitAsync(CancellationToken.None);
        await Task.WhenAll(copyOut, copyErr);
        raw?.Dispose();
        if (timedOut)
        {
            Console.Error.WriteLine($"matchlock: the command was stopped after --timeout {timeoutSeconds} s");
            return ExitCodes.TimedOut;
        }

        return result.ExitCode;
    }

    private void OnSignal(int signal)
    {
        ExecSession? session;
        int count;
        lock (_lock)
        {
            session = _session;
            count = ++_interrupts;
        }

        if (session is null)
        {
            _abort.Cancel(); // still booting: abandon the boot, CreateAsync cleans up
            return;
        }

        if (count == 1)
        {
            _ = session.SignalAsync(signal, CancellationToken.None).AsTask();
        }
        else
        {
            _ = session.CancelAsync(StopGrace, CancellationToken.None).AsTask();
        }
    }

    private static async Task PumpStdinAsync(ExecSession session)
    {
        try
        {
            // fd 0 itself: Console.OpenStandardInput() on a terminal is .NET's line-editing reader,
            // which sets its own terminal mode and echoes what it reads (doubling the guest's echo).
            await using var stdin = StdioStreams.OpenStdin();
            await session.PumpStdinAsync(stdin, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
        {
            // The command ended before its input did.
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
