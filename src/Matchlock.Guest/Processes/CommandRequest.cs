using Matchlock.Protocol.Messages;
namespace Matchlock.Guest.Processes;

/// <summary>What the host asks to run, before any resolution (see <see cref="CommandLauncher"/>).</summary>
internal sealed record CommandRequest(IReadOnlyList<string> Arguments)
{
    /// <summary>"KEY=VALUE" entries; defaults are added for what is missing.</summary>
    internal IReadOnlyList<string> Environment { get; init; } = [];

    /// <summary>Absolute path; empty means "/".</summary>
    internal string? WorkingDirectory { get; init; }

    /// <summary>Create the working directory when it is missing (docker run -w) instead of failing.</summary>
    internal bool CreateWorkingDirectory { get; init; }

    /// <summary>"", uid, name, uid:gid, name:group (Docker's forms).</summary>
    internal string? User { get; init; }

    internal bool Stdin { get; init; }

    internal bool Tty { get; init; }

    internal ushort Rows { get; init; } = TerminalDefaults.Rows;

    internal ushort Columns { get; init; } = TerminalDefaults.Cols;
}
