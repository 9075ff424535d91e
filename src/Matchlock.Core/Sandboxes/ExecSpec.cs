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
    /// This command over an image's defaults, composed in this one place for <c>run</c>, for
    /// <c>exec</c> through an owner and for the JSON-RPC server: the image's environment with
    /// <see cref="Env"/> laid over it (a bare <c>KEY</c> takes <paramref name="hostEnvironment"/>'s
    /// value, or is dropped), the working directory given, else the image's WORKDIR, else <c>/</c>,
    /// and the user given, else the image's USER. Everything else is kept.
    /// </summary>
    public ExecSpec OverImage(Images.ImageConfig image, Func<string, string?> hostEnvironment)
    {
        ArgumentNullException.ThrowIfNull(image);
        return this with
        {
            Argv = Argv is { Count: > 0 } ? Argv : throw new ArgumentException("exec needs a command"),
            Env = EnvironmentBuilder.Build(image.Env, Env, hostEnvironment),
            WorkingDir = WorkingDir ?? image.WorkingDir ?? "/",
            User = User ?? image.User,
        };
    }

    /// <summary>The wire form (the guest's, and the control socket's), with <paramref name="env"/> as its environment.</summary>
    internal ExecRequest ToRequest(IReadOnlyList<string> env) => new()
    {
        Argv = Argv,
        Env = env,
        WorkingDir = WorkingDir,
        CreateWorkingDir = CreateWorkingDir,
        User = User,
        Tty = Tty,
        Rows = Rows,
        Cols = Cols,
        Stdin = Stdin,
        KillGraceMs = (int)KillGrace.TotalMilliseconds,
    };

    /// <summary>The spec a wire request describes (the owner's side of the control socket).</summary>
    internal static ExecSpec FromRequest(ExecRequest request) => new()
    {
        Argv = request.Argv ?? [],
        Env = request.Env ?? [],
        WorkingDir = request.WorkingDir,
        CreateWorkingDir = request.CreateWorkingDir,
        User = request.User,
        Tty = request.Tty,
        Rows = request.Rows,
        Cols = request.Cols,
        Stdin = request.Stdin,
        KillGrace = TimeSpan.FromMilliseconds(Math.Clamp(request.KillGraceMs, 0, (int)TimeSpan.FromMinutes(10).TotalMilliseconds)),
    };
}
