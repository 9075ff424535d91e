using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>MATCHLOCK_DEBUG_TIMINGS=1 matchlock exec …</c>: where this process's share of an exec went,
/// on stderr after the command (bench/exec/README.md). Phases are wall time since Main;
/// <c>cpu_before_main</c> is what the runtime's start-up cost this process (getrusage).
/// </summary>
internal sealed class ExecTimings
{
    private readonly long _mainStarted = Stopwatch.GetTimestamp();
    private readonly TimeSpan _cpuBeforeMain = Environment.CpuUsage.TotalTime;
    private readonly StringBuilder _line = new("matchlock: timings");

    /// <summary>Set by <see cref="StartIfRequested"/> when MATCHLOCK_DEBUG_TIMINGS=1; null otherwise.</summary>
    public static ExecTimings? Current { get; private set; }

    /// <summary>Called first thing in Main.</summary>
    public static void StartIfRequested()
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_DEBUG_TIMINGS") == "1")
        {
            Current = new ExecTimings();
        }
    }

    /// <summary>Records that <paramref name="phase"/> ended now.</summary>
    public void Mark(string phase) =>
        _line.Append(CultureInfo.InvariantCulture, $" {phase}={Stopwatch.GetElapsedTime(_mainStarted).TotalMilliseconds:0.0}");

    public void Report() =>
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{_line} ms after main; cpu_before_main={_cpuBeforeMain.TotalMilliseconds:0.0} cpu_total={Environment.CpuUsage.TotalTime.TotalMilliseconds:0.0} ms"));
}
