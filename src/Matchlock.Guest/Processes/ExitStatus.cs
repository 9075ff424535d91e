namespace Matchlock.Guest.Processes;

/// <summary>
/// How a process ended: an exit code, or the signal that killed it. The guest reports both as
/// they are and leaves the shell convention (128 + signal) to the host, which maps it for users.
/// </summary>
internal readonly record struct ExitStatus(int? ExitCode, int? Signal, bool CoreDumped)
{
    internal static ExitStatus Exited(int code) => new(code, null, false);

    internal static ExitStatus Killed(int signal, bool coreDumped = false) => new(null, signal, coreDumped);

    /// <summary>Decodes a wait(2) status word (WIFEXITED / WIFSIGNALED).</summary>
    internal static ExitStatus FromWaitStatus(int status)
    {
        var termSignal = status & 0x7f;
        if (termSignal == 0)
        {
            return Exited((status >> 8) & 0xff);
        }

        // __WALL with WEXITED only reports terminations, never stops (0x7f).
        return Killed(termSignal, (status & 0x80) != 0);
    }

    /// <summary>The code a shell would report: the exit code, or 128 + signal.</summary>
    internal int ShellCode => ExitCode ?? 128 + (Signal ?? 0);

    public override string ToString() =>
        ExitCode is { } code ? $"exit code {code}" : $"signal {Signal}{(CoreDumped ? " (core dumped)" : "")}";
}
