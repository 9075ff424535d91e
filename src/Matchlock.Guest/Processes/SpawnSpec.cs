using Matchlock.Guest.Users;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Processes;

/// <summary>
/// A fully resolved command for <see cref="Spawner"/>: the path to execute (already resolved
/// against the requested PATH), argv (argv[0] included), the final environment, a working
/// directory that exists, and the user.
/// </summary>
internal sealed record SpawnSpec(
    string Path,
    IReadOnlyList<string> Arguments,
    IReadOnlyList<string> Environment,
    string WorkingDirectory,
    ExecUser User)
{
    /// <summary>Pipes: give the command a stdin pipe (else /dev/null, like `docker run` without -i).</summary>
    internal bool Stdin { get; init; }

    /// <summary>Run on a new PTY (stdin, stdout and stderr all on the slave) in a new session.</summary>
    internal bool Tty { get; init; }

    internal ushort Rows { get; init; } = TerminalDefaults.Rows;

    internal ushort Columns { get; init; } = TerminalDefaults.Cols;
}
