using System.Text;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Init;
using Matchlock.Guest.Interop;
using Matchlock.Guest.Processes;

namespace Matchlock.Guest;

/// <summary>
/// Entry point. Three roles, decided before anything else runs:
/// the exec-as helper (re-executed by ourselves to switch user), PID 1 in the VM, or a
/// command-line tool on the host (--version).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        GuestProcess.MarkStarted();

        // First: the helper must do nothing but switch identity and exec (see ExecAsHelper).
        if (args.Length > 0 && args[0] == ExecAsHelper.Verb)
        {
            return ExecAsHelper.Run(args);
        }

        // The kernel passes unknown command-line words to init as arguments: ignore them as PID 1.
        if (Environment.ProcessId == 1)
        {
            GuestInit.Run();
            return 0; // not reached: GuestInit powers off
        }

        if (args is ["--version"])
        {
            WriteLine(1, $"matchlock-guest {GuestProcess.Version}");
            return 0;
        }

        WriteLine(2, "matchlock-guest is the init process of Matchlock VMs; it runs as PID 1 inside the VM.\nUsage: matchlock-guest --version");
        return 2;
    }

    private static void WriteLine(int fd, string text) => FileDescriptors.WriteAll(fd, Encoding.UTF8.GetBytes(text + "\n"));
}
