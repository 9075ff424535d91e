using Matchlock.Core;

namespace Matchlock.Cli;

/// <summary>Turns the exceptions users can cause into one clear line and an exit status.</summary>
internal static class CliErrors
{
    /// <summary>One "matchlock: …" line on stderr for something that went wrong without ending the command (Console.Error is synchronized).</summary>
    public static void Warn(string message) => Console.Error.WriteLine($"matchlock: {message}");

    public static int Report(Exception ex)
    {
        var message = ex switch
        {
            // Every error raised on purpose (typed by what the caller can do next) and bad input:
            // their messages carry cause and remedy.
            MatchlockException or ArgumentException => ex.Message,
            // What a reset, corrupt or vanished guest stream raises where no layer translated it:
            // the sandbox's fault, said in one line (a stack trace would suggest ours).
            Protocol.MuxStreamResetException or Protocol.MuxConnectionClosedException or Protocol.MuxProtocolException =>
                $"the channel to the sandbox failed: {ex.Message}",
            UnauthorizedAccessException => ex.Message + " (matchlock needs root, or write access to its directories)",
            _ => null,
        };

        if (message is null)
        {
            Console.Error.WriteLine($"matchlock: internal error: {ex}");
        }
        else
        {
            Console.Error.WriteLine($"matchlock: {message}");
        }

        return ExitCodes.MatchlockError;
    }
}
