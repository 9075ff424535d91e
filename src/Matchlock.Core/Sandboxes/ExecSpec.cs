using Matchlock.Protocol.Messages;
namespace Matchlock.Core.Sandboxes;

/// <summary>One command to run in a sandbox. Immutable; copy with <c>with</c>.</summary>
public sealed record ExecSpec
{
    public required IReadOnlyList<string> Argv { get; init; }

    /// <summary>"KEY=VALUE" entries, in order; later entries win.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    public string? WorkingDir { get; init; }

    /// <summary>Create <see cref="WorkingDir"/> when missing (<c>docker run -w</c>); otherwise a missing one fails the command with 126.</summary>
    public bool CreateWorkingDir { get; init; }

    public string? User { get; init; }

    /// <summary>Run on a pseudo-terminal (stdout carries the terminal; no separate stderr).</summary>
    public bool Tty { get; init; }

    public int Rows { get; init; } = TerminalDefaults.Rows;

    public int Cols { get; init; } = TerminalDefaults.Cols;

    /// <summary>The caller will write stdin; otherwise the command reads /dev/null.</summary>
    public bool Stdin { get; init; }

    /// <summary>Grace between SIGTERM and SIGKILL when the command is cancelled.</summary>
    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(5);
}
