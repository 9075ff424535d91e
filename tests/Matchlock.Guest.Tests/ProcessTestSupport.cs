using System.Text;
using Matchlock.Guest.Processes;
using Matchlock.Guest.Users;

namespace Matchlock.Guest.Tests;

/// <summary>Shared helpers for the tests that spawn real processes on the host.</summary>
internal static class ProcessTestSupport
{
    internal static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The published guest binary, needed as the exec-as helper (in the guest it is
    /// /proc/self/exe; here /proc/self/exe is the test host). MATCHLOCK_GUEST_BIN, else
    /// artifacts/guest/matchlock-guest in the repository; null when neither exists.
    /// </summary>
    internal static string? HelperPath
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("MATCHLOCK_GUEST_BIN");
            if (!string.IsNullOrEmpty(configured) && File.Exists(configured))
            {
                return configured;
            }

            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Matchlock.slnx")))
                {
                    var candidate = Path.Combine(dir.FullName, "artifacts/guest/matchlock-guest");
                    return File.Exists(candidate) ? candidate : null;
                }
            }

            return null;
        }
    }

    internal static Spawner NewSpawner(string? helper = null) => new(Reaper.Shared, helper);

    internal static CommandLauncher NewLauncher(string? helper = null) => new(NewSpawner(helper), "/", () => "testhost");

    internal static SpawnSpec Shell(string script, ExecUser? user = null) =>
        new("/bin/sh", ["sh", "-c", script], ["PATH=/usr/bin:/bin", "LC_ALL=C"], "/", user ?? ExecUser.Root);

    /// <summary>Reads a stream to its end on a thread of its own (the reads block).</summary>
    internal static Task<string> ReadAllAsync(Stream? stream) =>
        stream is null
            ? Task.FromResult("")
            : Task.Factory.StartNew(
                () =>
                {
                    using var buffer = new MemoryStream();
                    stream.CopyTo(buffer);
                    return Encoding.UTF8.GetString(buffer.ToArray());
                },
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default);

    internal static async Task<(ExitStatus Status, string Stdout, string Stderr)> RunToEndAsync(ChildProcess child)
    {
        var stdout = ReadAllAsync(child.Stdout ?? child.Terminal);
        var stderr = ReadAllAsync(child.Stderr);
        var status = await child.Exited.WaitAsync(TestTimeout, TestContext.Current.CancellationToken);
        return (status, await stdout.WaitAsync(TestTimeout, TestContext.Current.CancellationToken), await stderr.WaitAsync(TestTimeout, TestContext.Current.CancellationToken));
    }

    /// <summary>True when a child of this process runs exactly <paramref name="argv"/> (read from /proc, not waited for).</summary>
    internal static bool ChildrenRunning(params string[] argv)
    {
        var expected = string.Join('\0', argv) + "\0";
        var self = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields[1] == self && File.ReadAllText(Path.Combine(dir, "cmdline")) == expected)
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // not a process, or it exited while we looked
            }
            catch (UnauthorizedAccessException)
            {
                // not ours
            }
        }

        return false;
    }

    /// <summary>True when the pid no longer runs (gone, or a zombie waiting for its new parent).</summary>
    internal static bool IsDead(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is 'Z' or 'X';
        }
        catch (IOException)
        {
            return true;
        }
    }
}
