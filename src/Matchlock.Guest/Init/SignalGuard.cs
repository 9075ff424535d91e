using System.Runtime.InteropServices;
using Matchlock.Guest.Diagnostics;

namespace Matchlock.Guest.Init;

/// <summary>
/// The kernel already drops default-action signals sent to PID 1, but the .NET runtime may
/// install handlers (ProcessExit on SIGTERM), which would make a stray `kill 1` in the guest end
/// PID 1 and panic the kernel. We register explicit handlers that cancel the default: the host
/// stops us through the channel (shutdown), never through a signal. Children do not inherit
/// handlers (exec resets them; SETSIGDEF resets the rest).
/// </summary>
internal static class SignalGuard
{
    private static readonly List<PosixSignalRegistration> Registrations = [];

    internal static void IgnoreTerminationSignals()
    {
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
        {
            Registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                GuestLog.Warn($"ignored {context.Signal} sent to PID 1 (stop the VM through the host)");
            }));
        }
    }
}
