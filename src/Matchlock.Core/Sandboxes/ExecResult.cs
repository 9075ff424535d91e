namespace Matchlock.Core.Sandboxes;

/// <summary>How a command ended.</summary>
/// <param name="ExitCode">Exit status; 128 + N when killed by signal N (shell convention).</param>
/// <param name="Signal">The signal that killed it, if one did.</param>
/// <param name="Duration">Guest-side time from spawn to exit.</param>
/// <param name="Error">Why the command could not start (not found, bad user), when it could not.</param>
public sealed record ExecResult(int ExitCode, int? Signal, TimeSpan Duration, string? Error = null);
