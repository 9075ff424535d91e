using System.Collections.Concurrent;
using System.Diagnostics;

namespace Matchlock.Core.Vm;

/// <summary>
/// The one place matchlock spawns a long-running helper (QEMU). The child gets stdin from
/// /dev/null, stdout and stderr written to one file (truncated), and SIGKILL as its parent-death signal so it
/// cannot outlive the host process (docs/ARCHITECTURE.md D9: the owner process owns its VM).
/// </summary>
/// <remarks>
/// .NET's Process cannot run code between fork and exec, so PR_SET_PDEATHSIG is set by
/// util-linux <c>setpriv --pdeathsig KILL</c>, which then execs the real program (same PID).
/// prctl(2): the "parent" is the <em>thread</em> that forked; Process.Start forks on the calling
/// thread, and a thread-pool thread that retires would kill QEMU. So every spawn runs on one
/// dedicated thread that lives as long as the process.
/// With a network namespace, <c>ip netns exec NAME</c> joins the chain after setpriv: it
/// setns()es and execs the program without forking (iproute2 forks only in batch mode), so the
/// PID and the death signal (kept across execve for non-set-uid programs) are the program's.
/// Known gap: if the host dies between fork and setpriv's prctl (microseconds) the child is
/// not signalled; <c>qemu.pid</c> in the VM's WorkDir lets a later cleanup find it.
/// </remarks>
internal sealed class ChildProcess : IDisposable
{
    private static readonly BlockingCollection<Action> SpawnQueue = StartSpawner();

    private readonly Process _process;

    private ChildProcess(Process process, Task<int> exited)
    {
        _process = process;
        Pid = process.Id;
        Exited = exited;
    }

    public int Pid { get; }

    /// <summary>Completes with the exit code (128 + signal number when killed by a signal).</summary>
    public Task<int> Exited { get; }

    /// <summary>Full path of <paramref name="program"/> (searched on PATH unless it has a '/'), or null.</summary>
    public static string? FindOnPath(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(program) ? program : null;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
        {
            var candidate = Path.Combine(dir.Length == 0 ? "." : dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <param name="networkNamespace">Named namespace (<c>ip netns</c>) to run the program in; null: ours.</param>
    public static async Task<ChildProcess> StartAsync(
        string program, IReadOnlyList<string> arguments, string outputPath, CancellationToken cancellationToken, string? networkNamespace = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var setpriv = FindOnPath("setpriv")
            ?? throw new InvalidOperationException("setpriv (util-linux) not found; it is needed so VMs die with their owner process");
        var ip = networkNamespace is null ? null : FindOnPath("ip")
            ?? throw new InvalidOperationException("ip (iproute2) not found; it is needed to run a VM in its network namespace");

        // sh only sets up the file descriptors, then execs setsid, which execs setpriv, which
        // execs the program: one PID throughout (setsid forks only for a group leader, which a
        // fresh child is not), and no pipe for us to pump.
        // setsid: the VMM gets its own session, so a Ctrl-C typed at the user's terminal (SIGINT
        // to the whole foreground process group) reaches only matchlock, which forwards it to the
        // guest; without it the terminal's SIGINT killed QEMU outright.
        // Redirected stdio: .NET rewrites the terminal's modes around children that share the
        // terminal, which would undo `run -it`'s raw mode.
        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec </dev/null >\"$1\" 2>&1 && shift && exec setsid \"$0\" --pdeathsig KILL -- \"$@\"");
        psi.ArgumentList.Add(setpriv);
        psi.ArgumentList.Add(outputPath);
        if (ip is not null)
        {
            psi.ArgumentList.Add(ip);
            psi.ArgumentList.Add("netns");
            psi.ArgumentList.Add("exec");
            psi.ArgumentList.Add(networkNamespace!);
        }

        psi.ArgumentList.Add(program);
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        var started = new TaskCompletionSource<ChildProcess>(TaskCreationOptions.RunContinuationsAsynchronously);
        SpawnQueue.Add(() =>
        {
            try
            {
                var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
                var exited = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
                p.Exited += (_, _) => exited.TrySetResult(p.ExitCode);
                p.Start();
                if (p.HasExited)
                {
                    exited.TrySetResult(p.ExitCode);
                }

                started.SetResult(new ChildProcess(p, exited.Task));
            }
            catch (Exception ex)
            {
                started.SetException(ex);
            }
        }, cancellationToken);
        return await started.Task;
    }

    /// <summary>SIGKILL. Safe to call after exit (no-op).</summary>
    public void Kill()
    {
        if (Exited.IsCompleted)
        {
            return;
        }

        try
        {
            _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill: the goal (process gone) is met.
        }
    }

    public void Dispose() => _process.Dispose();

    private static BlockingCollection<Action> StartSpawner()
    {
        var queue = new BlockingCollection<Action>();
        var thread = new Thread(() =>
        {
            foreach (var work in queue.GetConsumingEnumerable())
            {
                work();
            }
        })
        {
            IsBackground = true,
            Name = "matchlock-spawner",
        };
        thread.Start();
        return queue;
    }
}
