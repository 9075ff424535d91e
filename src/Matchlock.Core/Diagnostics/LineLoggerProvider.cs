using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Diagnostics;

/// <summary>
/// A logger provider that turns each entry into one line
/// (<c>2026-12-07T22:30:00.123Z warn  Matchlock.Owner[1003] message</c>, exception lines indented
/// below) and hands it to a sink: the bounded <see cref="LogFile"/> of an owner, or stderr.
/// </summary>
/// <remarks>
/// Ours rather than Microsoft.Extensions.Logging.Console: that provider configures itself through
/// the options/configuration binder, which NativeAOT cannot analyse, and it cannot write a file.
/// Messages are whatever the [LoggerMessage] templates produce; they carry names, never secret
/// values (docs/NETWORK.md "Secrets").
/// </remarks>
internal sealed class LineLoggerProvider(Action<string> sink, LogLevel minimum, TimeProvider time) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new LineLogger(categoryName, sink, minimum, time);

    public void Dispose()
    {
    }

    /// <summary>The short level names of <c>--log-level</c>.</summary>
    internal static string Name(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        LogLevel.Critical => "crit",
        _ => "none",
    };

    private sealed class LineLogger(string category, Action<string> sink, LogLevel minimum, TimeProvider time) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var line = new StringBuilder()
                .Append(time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture))
                .Append(' ').Append(Name(logLevel).PadRight(5))
                .Append(' ').Append(category).Append('[').Append(eventId.Id.ToString(CultureInfo.InvariantCulture)).Append("] ")
                .Append(formatter(state, exception));
            if (exception is not null)
            {
                foreach (var text in exception.ToString().Split('\n'))
                {
                    line.Append("\n    ").Append(text.TrimEnd('\r'));
                }
            }

            sink(line.ToString());
        }
    }
}
