using System.CommandLine;
using Matchlock.Core.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Matchlock.Cli;

/// <summary>
/// <c>--log-level debug|info|warn|error</c> on every command (also <c>MATCHLOCK_LOG_LEVEL</c>, as
/// the original's 0.2.10): what the user asked to see on stderr. Not asked, nothing is logged
/// there, so every command's output stays as it is; a sandbox owner still writes
/// <c>owner.log</c> at info (or the asked level).
/// </summary>
internal static class CliLogging
{
    public static Option<string> LevelOption { get; } = new("--log-level")
    {
        Description = "Log on stderr at this level: debug, info, warn or error (default: $MATCHLOCK_LOG_LEVEL, else no log)",
        Recursive = true,
    };

    /// <summary>The level asked for, set once by <see cref="Program"/> before any command runs; null: none.</summary>
    public static LogLevel? ConsoleLevel { get; private set; }

    /// <summary>Reads the flag, else the variable.</summary>
    /// <exception cref="ArgumentException">Not a level (a usage error).</exception>
    public static void Apply(ParseResult parse)
    {
        var text = parse.GetValue(LevelOption) ?? Environment.GetEnvironmentVariable(MatchlockLogging.LevelVariable);
        ConsoleLevel = string.IsNullOrWhiteSpace(text) ? null : MatchlockLogging.ParseLevel(text);
    }

    /// <summary>The factory for a command that only logs to stderr (when asked).</summary>
    public static ILoggerFactory ForConsole() => MatchlockLogging.Create(ConsoleLevel);
}
