using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Processes;

/// <summary>
/// A running command: the leader of its own process group (pipes) or session (PTY), so signals
/// go to the group (kill(-pid)) and reach what it started. Owns its stdio streams.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Reaper _reaper;

    internal ChildProcess(Reaper reaper, int pid, Task<ExitStatus> exited, FdStream? stdin, FdStream? stdout, FdStream? stderr, Pty? pty)
    {
        _reaper = reaper;
        Pid = pid;
        Exited = exited;
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        Pty = pty;
        if (pty is not null)
        {
            // One fd, two directions: both streams share the master handle; only Dispose closes it.
            Terminal = new FdStream(pty.Master, FileAccess.ReadWrite, eioIsEndOfStream: true);
        }
    }

    internal int Pid { get; }

    /// <summary>Completes when the leader has been reaped.</summary>
    internal Task<ExitStatus> Exited { get; }

    /// <summary>Write end of the command's stdin pipe (null with /dev/null stdin or a PTY). Dispose it for EOF.</summary>
    internal FdStream? Stdin { get; }

    internal FdStream? Stdout { get; }

    internal FdStream? Stderr { get; }

    internal Pty? Pty { get; }

    /// <summary>The PTY master: read the command's output (ends when every slave fd is closed), write its input.</summary>
    internal FdStream? Terminal { get; }

    /// <summary>Signals the whole group while the leader lives. False when it has already exited.</summary>
    internal bool Signal(int signal) => _reaper.TrySignalGroup(Pid, signal);

    /// <summary>
    /// SIGTERM to the group; if the leader has not exited after <paramref name="grace"/>, SIGKILL
    /// to the group. Leftover members of the group (background jobs) get SIGKILL either way once
    /// the grace is over or the leader is gone, so cancellation leaves nothing behind.
    /// </summary>
    internal async Task<ExitStatus> CancelAsync(TimeSpan grace)
    {
        Signal(LibcConstants.SIGTERM);
        var finished = await Task.WhenAny(Exited, Task.Delay(grace)).ConfigureAwait(false);
        if (finished != Exited)
        {
            Signal(LibcConstants.SIGKILL);
        }

        var status = await Exited.ConfigureAwait(false);
        // The group id stays reserved while any member lives, so this reaches only leftovers of
        // this command; once the group is empty the number could in principle be reused, but pids
        // are allocated cyclically, so that needs a full wrap of the pid space in between.
        // ESRCH (nobody left) is the usual outcome.
        _reaper.TrySignalGroup(Pid, LibcConstants.SIGKILL, evenAfterLeaderExit: true);
        return status;
    }

    public void Dispose()
    {
        Stdin?.Dispose();
        Stdout?.Dispose();
        Stderr?.Dispose();
        Terminal?.Dispose();
        Pty?.Dispose();
    }
}
