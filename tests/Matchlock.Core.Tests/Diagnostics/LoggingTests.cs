using Matchlock.Core.Diagnostics;
using Matchlock.Core.Tests.Images;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Matchlock.Core.Tests.Diagnostics;

/// <summary>Unit tier: the line format, levels, and the owner's bounded log file.</summary>
public sealed class LoggingTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Lines_carry_time_level_category_event_id_and_the_exception_indented()
    {
        var lines = new List<string>();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 22, 30, 0, 123, TimeSpan.Zero));
        using var provider = new LineLoggerProvider(lines.Add, LogLevel.Information, time);
        var log = provider.CreateLogger("Matchlock.Test");
        log.Log(LogLevel.Warning, new EventId(1003), "it failed", new InvalidOperationException("because"), (s, _) => s);
        log.Log(LogLevel.Debug, new EventId(1), "below the level", null, (s, _) => s);
        var line = Assert.Single(lines);
        Assert.StartsWith("2026-12-07T22:30:00.123Z warn  Matchlock.Test[1003] it failed\n    System.InvalidOperationException: because", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("INFO", LogLevel.Information)]
    [InlineData("warn", LogLevel.Warning)]
    [InlineData("warning", LogLevel.Warning)]
    [InlineData("error", LogLevel.Error)]
    public void Levels_parse_by_the_originals_names(string text, LogLevel level) => Assert.Equal(level, MatchlockLogging.ParseLevel(text));

    [Fact]
    public void A_bad_level_names_the_flag_and_the_valid_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => MatchlockLogging.ParseLevel("chatty"));
        Assert.Contains("--log-level", e.Message, StringComparison.Ordinal);
        Assert.Contains("debug, info, warn, error", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_file_keeps_lines_written_before_it_is_named_then_stays_bounded()
    {
        var path = _dir.Combine("owner.log");
        using var file = new LogFile(maxBytes: 8192);
        file.Write("before open");
        file.Open(path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal("before open\n", File.ReadAllText(path));
        var line = new string('x', 99);
        for (var i = 0; i < 1000; i++)
        {
            file.Write(line);
        }

        Assert.InRange(new FileInfo(path).Length, 1, 8192);
        Assert.InRange(new FileInfo(path + ".1").Length, 1, 8192);
        Assert.False(File.Exists(path + ".2"));
    }

    [Fact]
    public void Lines_beyond_the_pending_bound_are_dropped_and_counted()
    {
        var path = _dir.Combine("early.log");
        using var file = new LogFile();
        for (var i = 0; i < LogFile.MaxPending + 3; i++)
        {
            file.Write($"line {i}");
        }

        file.Open(path);
        var lines = File.ReadAllLines(path);
        Assert.Equal("(3 earlier lines were dropped before the log file was opened)", lines[0]);
        Assert.Equal("line 3", lines[1]);
        Assert.Equal(LogFile.MaxPending + 1, lines.Length);
    }
}
