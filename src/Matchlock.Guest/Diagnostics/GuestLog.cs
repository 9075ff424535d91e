using System.Diagnostics;
using System.Globalization;
using System.Text;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Diagnostics;

/// <summary>
/// Line log to fd 2. As PID 1 that is /dev/console (the kernel opens it for init; Boot makes
/// sure), i.e. the serial console the host saves to vm.log. No System.Console: it would install
/// terminal and SIGCHLD handling we do not want in PID 1.
/// </summary>
internal static class GuestLog
{
    // Serializes whole lines from concurrent threads so they do not interleave.
    private static readonly Lock WriteLock = new();

    internal static void Info(string message) => Write("", message);

    internal static void Warn(string message) => Write("warning: ", message);

    internal static void Error(string message) => Write("error: ", message);

    private static void Write(string level, string message)
    {
        // CLOCK_MONOTONIC (Stopwatch) counts from boot in the guest, so this reads like the
        // kernel's own printk timestamps and lines up with them in vm.log.
        var seconds = Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        var line = string.Create(CultureInfo.InvariantCulture, $"[{seconds,12:F6}] matchlock-guest: {level}{message}\n");
        var bytes = Encoding.UTF8.GetBytes(line);
        lock (WriteLock)
        {
            FileDescriptors.WriteAll(2, bytes);
        }
    }
}
