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

    /// <summary>
    /// A command over an image's defaults, composed in this one place for <c>run</c> and for
    /// <c>exec</c> through an owner: the image's environment with <paramref name="env"/> laid over
    /// it (a bare <c>KEY</c> takes <paramref name="hostEnvironment"/>'s value, or is dropped), the
    /// working directory given, else the image's WORKDIR, else <c>/</c>, and the user given, else
    /// the image's USER. Terminal, stdin and size are the caller's to set with <c>with</c>.
    /// </summary>
    public static ExecSpec OverImage(
        Images.ImageConfig image, IReadOnlyList<string> argv, IEnumerable<string> env, Func<string, string?> hostEnvironment, string? workingDir, string? user)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new ExecSpec
        {
            Argv = argv is { Count: > 0 } ? argv : throw new ArgumentException("exec needs a command"),
            Env = EnvironmentBuilder.Build(image.Env, env, hostEnvironment),
            WorkingDir = workingDir ?? image.WorkingDir ?? "/",
            User = user ?? image.User,
        };
    }
}
