using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Diagnostics;

/// <summary>
/// Builds the logger factory a matchlock process uses: stderr at the level the user asked for
/// (<c>--log-level</c> / <c>MATCHLOCK_LOG_LEVEL</c>; nothing when not asked, so command output
/// stays as it is), and for a sandbox owner its <see cref="LogFile"/> (<c>owner.log</c>) at that
/// level or info. Only our own categories log: Kestrel and YARP get no providers (their request
/// logs would carry URLs after secret substitution).
/// </summary>
public static class MatchlockLogging
{
    /// <summary>The environment variable the CLI reads when <c>--log-level</c> is not given.</summary>
    public const string LevelVariable = "MATCHLOCK_LOG_LEVEL";

    /// <summary>The level names <c>--log-level</c> takes (the original's four, plus trace).</summary>
    public static IReadOnlyList<string> LevelNames { get; } = ["trace", "debug", "info", "warn", "error"];

    /// <summary>Parses a level name (case-insensitive; "warning" and "information" also accepted).</summary>
    /// <exception cref="ArgumentException">Not a level; the message lists the valid ones.</exception>
    public static LogLevel ParseLevel(string text) => text.Trim().ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" or "information" => LogLevel.Information,
        "warn" or "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        _ => throw new ArgumentException($"--log-level \"{text}\" is not a level; use one of {string.Join(", ", LevelNames)}"),
    };

    /// <summary>A factory writing to stderr at <paramref name="console"/> (null: not at all) and to <paramref name="file"/> at <paramref name="fileLevel"/>.</summary>
    public static ILoggerFactory Create(LogLevel? console, LogFile? file = null, LogLevel fileLevel = LogLevel.Information, TimeProvider? time = null)
    {
        var clock = time ?? TimeProvider.System;
        var providers = new List<ILoggerProvider>();
        if (console is { } level)
        {
            providers.Add(new LineLoggerProvider(line => Console.Error.WriteLine(line), level, clock));
        }

        if (file is not null)
        {
            providers.Add(new LineLoggerProvider(file.Write, fileLevel, clock));
        }

        return new LoggerFactory(providers, new LoggerFilterOptions { MinLevel = LogLevel.Trace });
    }
}
