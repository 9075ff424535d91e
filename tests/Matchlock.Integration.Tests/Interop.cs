using System.Runtime.InteropServices;

namespace Matchlock.Integration.Tests;

internal static partial class Interop
{
    // Safe: sends a signal to a process this test started, by PID.
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
