using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Sets the guest's wall clock from the host (microvm has no RTC the kernel trusts early, and
/// TLS certificate checks in the guest need the right date).
/// </summary>
internal static class SystemClock
{
    internal static unsafe void Set(DateTimeOffset now)
    {
        var ticks = now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var time = new Timespec
        {
            Seconds = ticks / TimeSpan.TicksPerSecond,
            Nanoseconds = ticks % TimeSpan.TicksPerSecond * 100,
        };
        if (Libc.clock_settime(LibcConstants.CLOCK_REALTIME, &time) != 0)
        {
            throw NativeCallException.FromLastError("clock_settime");
        }
    }
}
