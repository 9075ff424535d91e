using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Init;

/// <summary>
/// Ends the VM. PID 1 must never exit (the kernel panics), so every way out goes through here:
/// sync, then reboot(RB_AUTOBOOT). QEMU runs with -no-reboot, so a reboot makes it exit; that
/// also works on VMMs without ACPI power-off.
/// </summary>
internal static class PowerControl
{
    internal static void Reboot()
    {
        Libc.sync();
        _ = Libc.reboot(LibcConstants.RB_AUTOBOOT);
        // Only reachable without CAP_SYS_BOOT (not PID 1): nothing else we can do but stay alive.
        GuestLog.Error($"reboot: {NativeCallException.Describe(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}; halting here");
        Thread.Sleep(Timeout.Infinite);
    }

    /// <summary>Logs the cause to the console (vm.log) and powers off.</summary>
    internal static void Fatal(string what, Exception? exception = null)
    {
        GuestLog.Error($"fatal: {what}{(exception is null ? "" : $": {exception.GetType().Name}: {exception.Message}")}");
        if (exception?.StackTrace is { } stack)
        {
            GuestLog.Error(stack);
        }

        Reboot();
    }
}
