using System.Text;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Processes;

namespace Matchlock.Guest.Init;

/// <summary>
/// `matchlock.selftest` on the kernel command line: after the boot, run a few commands through
/// the real spawner (pipes, a PTY, another user via the helper) and log what they print to the
/// console, then power off. A boot smoke test that needs no host agent.
/// </summary>
internal static class SelfTest
{
    internal static void Run(Spawner spawner)
    {
        var launcher = new CommandLauncher(spawner, "/", () => "selftest");
        Show(launcher, new CommandRequest(["sh", "-c", "echo pid=$$; id; cat /proc/mounts; ls -l /dev/ptmx /dev/fd /dev/pts; echo tmp: $(stat -c %a /tmp); hostname; echo err >&2; exit 3"]));
        Show(launcher, new CommandRequest(["sh", "-c", "tty; stty size; echo ctty-ok > /dev/tty"]) { Tty = true, Rows = 33, Columns = 101 });
        Show(launcher, new CommandRequest(["id"]) { User = "nobody" });
        Show(launcher, new CommandRequest(["no-such-command"]));
    }

    private static void Show(CommandLauncher launcher, CommandRequest request)
    {
        var name = string.Join(' ', request.Arguments);
        try
        {
            using var child = launcher.Launch(request);
            var output = new StringBuilder();
            var readers = new[] { child.Stdout, child.Stderr, child.Terminal }
                .Where(s => s is not null)
                .Select(s => Task.Run(() =>
                {
                    using var reader = new StreamReader(s!, leaveOpen: true);
                    var text = reader.ReadToEnd();
                    lock (output)
                    {
                        output.Append(text);
                    }
                }))
                .ToArray();
            var status = child.Exited.GetAwaiter().GetResult();
            Task.WaitAll(readers, TimeSpan.FromSeconds(5));
            GuestLog.Info($"selftest `{name}` → {status}\n{output}");
        }
        catch (SpawnException e)
        {
            GuestLog.Info($"selftest `{name}` → spawn failed ({e.ExitCode}): {e.Message}");
        }
    }
}
