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
        Measure(launcher, "root", null);
        Measure(launcher, "nobody (exec-as helper)", "nobody");
    }

    /// <summary>Median spawn-to-reaped time of `true`, to show what the helper re-exec costs.</summary>
    private static void Measure(CommandLauncher launcher, string label, string? user)
    {
        var samples = new List<double>();
        for (var i = 0; i < 15; i++)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using var child = launcher.Launch(new CommandRequest(["true"]) { User = user });
            child.Exited.GetAwaiter().GetResult();
            samples.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        samples.Sort();
        GuestLog.Info(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"selftest spawn `true` as {label}: median {samples[samples.Count / 2]:F1} ms, min {samples[0]:F1} ms"));
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
