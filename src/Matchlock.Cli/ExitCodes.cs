namespace Matchlock.Cli;

/// <summary>Our own exit statuses; anything else is the command's (docker run's conventions).</summary>
internal static class ExitCodes
{
    /// <summary>Matchlock itself failed (bad flag value, unknown image, VM did not start).</summary>
    public const int MatchlockError = 125;

    /// <summary><c>--timeout</c> fired (as timeout(1)).</summary>
    public const int TimedOut = 124;

    /// <summary>Interrupted by Ctrl-C before the command could report a status.</summary>
    public const int Interrupted = 130;
}
