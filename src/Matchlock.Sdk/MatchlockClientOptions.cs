namespace Matchlock.Sdk;

/// <summary>How the SDK reaches Matchlock: which server runs the sandbox, and how it is closed.</summary>
public sealed record MatchlockClientOptions
{
    /// <summary>The defaults: <c>$MATCHLOCK_BIN rpc</c> (else <c>matchlock rpc</c>) as a child process.</summary>
    public static MatchlockClientOptions Default { get; } = new();

    /// <summary>
    /// The <c>matchlock</c> binary for the child process and for <c>rm</c> / <c>volume</c>; null
    /// means <c>$MATCHLOCK_BIN</c>, else <c>matchlock</c> on PATH.
    /// </summary>
    public string? BinaryPath { get; init; }

    /// <summary>Runs the binary through <c>sudo</c> (non-interactive sudo must be allowed).</summary>
    public bool UseSudo { get; init; }

    /// <summary>
    /// Where the server runs; null means the child process. Use
    /// <see cref="MatchlockTransport.InProcess"/> to embed the server in this process.
    /// </summary>
    public MatchlockTransport? Transport { get; init; }

    /// <summary>How long the server may take to stop the sandbox on close (sent as <c>timeout_seconds</c>; default 2 s).</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Also runs <c>matchlock rm &lt;id&gt;</c> when the sandbox is disposed (default false: it stays listed as stopped).</summary>
    public bool RemoveOnDispose { get; init; }

    internal string ResolvedBinary => Internal.CommandLine.ResolveBinary(BinaryPath);
}
