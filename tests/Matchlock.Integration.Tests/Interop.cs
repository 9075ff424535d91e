using System.Runtime.InteropServices;

namespace Matchlock.Integration.Tests;

internal static partial class Interop
{
    // Safe: sends a signal to a process this test started, by PID.
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>Alive and not a zombie: a detached owner's parent is gone, and whoever adopted it may reap late.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
