using System.Diagnostics;
using System.Reflection;

namespace Matchlock.Guest.Diagnostics;

/// <summary>This binary's version and when its Main began (reported in the hello).</summary>
internal static class GuestProcess
{
    /// <summary>CLOCK_MONOTONIC at entry: on a fresh VM that is the uptime when the runtime was up.</summary>
    internal static long StartedAt { get; private set; }

    internal static string Version =>
        typeof(GuestProcess).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Called first thing in Main.</summary>
    internal static void MarkStarted() => StartedAt = Stopwatch.GetTimestamp();
}
