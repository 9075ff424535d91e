using System.Diagnostics;
using System.Globalization;
using Matchlock.Core;
using Matchlock.Core.Interop;
using Matchlock.Core.Owner;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.State;

namespace Matchlock.Integration.Tests;

/// <summary>
/// A private MATCHLOCK_HOME for one test class, with the base image imported into it, so tests
/// can check that nothing is left behind without seeing other runs' files. The kernel cache is
/// shared (building it is not what these tests are about).
/// </summary>
public sealed class MatchlockHome : IAsyncLifetime
{
    private readonly List<Process> _started = []; // every CLI we started; guarded by itself

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "matchlock-it-" + Guid.NewGuid().ToString("N")[..8]);

    public string VmsDir => Path.Combine(Root, "vms");

    public bool Ready { get; private set; }

    public async ValueTask InitializeAsync()
    {
        if (VmPrerequisites.Missing() is not null)
        {
            return; // each test reports it through VmPrerequisites.Ensure()
        }

        Directory.CreateDirectory(Root);
        await using var tar = File.OpenRead(VmPrerequisites.BaseImageTar);
        var import = await RunAsync(["image", "import", "busybox:latest"], tar, TimeSpan.FromMinutes(3));
        if (import.ExitCode != 0)
        {
            throw new InvalidOperationException("importing the base image failed: " + import);
        }

        Ready = true;
    }

    /// <summary>Runs the matchlock CLI with this home; kills it (by PID) if it outlives <paramref name="timeout"/>.</summary>
    public async Task<CliResult> RunAsync(IReadOnlyList<string> args, Stream? stdin = null, TimeSpan? timeout = null, Action<Process>? started = null, Stream? stdoutSink = null, IReadOnlyDictionary<string, string>? env = null)
    {
        using var process = Start(args, env);
        started?.Invoke(process);
        var stdoutBuffer = stdoutSink is null ? new MemoryStream() : null;
        var stdout = process.StandardOutput.BaseStream.CopyToAsync(stdoutSink ?? stdoutBuffer!);
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await stdin.CopyToAsync(process.StandardInput.BaseStream);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw new TimeoutException($"matchlock {string.Join(' ', args)} did not finish within {timeout}; stderr: {await stderr}");
        }

        await stdout;
        return new CliResult(process.ExitCode, stdoutBuffer?.ToArray() ?? [], await stderr);
    }

    public Process Start(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        // Through setsid, as a shell starts a job: matchlock leads its own process group, so a
        // test can signal that group the way a terminal's Ctrl-C does (same PID: setsid forks only
        // when the caller already leads a group).
        var psi = new ProcessStartInfo("setsid")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(VmPrerequisites.MatchlockBin);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["MATCHLOCK_HOME"] = Root;
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start matchlock");
        lock (_started)
        {
            _started.Add(process);
        }

        return process;
    }

    /// <summary>
    /// Imports the Debian test image (curl, python3; scripts/make-debian-image.sh, built by
    /// setup.sh) as <c>debian-test:latest</c>. Returns why it cannot (the tarball is missing), or
    /// null once imported; a failed import throws.
    /// </summary>
    public async Task<string?> ImportDebianTestImageAsync()
    {
        var debian = Path.Combine(VmPrerequisites.RepoRoot, "artifacts", "debian-test.tar");
        if (!File.Exists(debian))
        {
            return "artifacts/debian-test.tar is missing (./setup.sh builds it)";
        }

        await using var tar = File.OpenRead(debian);
        var import = await RunAsync(["image", "import", "debian-test:latest"], tar, TimeSpan.FromMinutes(5));
        return import.ExitCode == 0 ? null : throw new InvalidOperationException("importing the Debian test image failed: " + import);
    }

    /// <summary>No VMM running for this home, no VM directory, no half-imported image.</summary>
    public void AssertNothingLeft()
    {
        Assert.Empty(QemuProcesses());
        var leftovers = Directory.Exists(VmsDir) ? Directory.GetFileSystemEntries(VmsDir) : [];
        Assert.True(leftovers.Length == 0, "left behind: " + string.Join(", ", leftovers));
        var images = Path.Combine(Root, "images");
        var staging = Directory.Exists(images) ? Directory.GetFileSystemEntries(images, ".tmp*") : [];
        Assert.True(staging.Length == 0, "import staging left behind: " + string.Join(", ", staging));
    }

    /// <summary>
    /// Starts <c>matchlock run</c> with a command that prints "started" and sleeps, and returns once
    /// it has printed: the CLI (to signal), the run (completes when the CLI exits) and the VM id.
    /// </summary>
    public async Task<(Process Cli, Task<CliResult> Run, string VmId)> StartSleepingRunAsync()
    {
        var started = new TaskCompletionSource();
        Process? cli = null;
        var run = RunAsync(["run", "--image", "busybox", "--", "sh", "-c", "echo started; sleep 300"],
            started: p => cli = p, stdoutSink: new SignalingStream("started", started));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(90), TestContext.Current.CancellationToken);
        return (cli!, run, Path.GetFileName(Assert.Single(Directory.GetDirectories(VmsDir))));
    }

    /// <summary>The PID recorded as the owner of a VM of this home (alive or not).</summary>
    public int OwnerPid(string id) =>
        int.Parse(File.ReadAllText(Path.Combine(VmsDir, id, OwnerRecord.FileName)).Split(' ')[0], CultureInfo.InvariantCulture);

    /// <summary>QEMU processes whose command line mentions this home: must be none when idle.</summary>
    public IReadOnlyList<int> QemuProcesses() =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && ReadCmdline(pid) is { } c && c.Contains("qemu-system", StringComparison.Ordinal) && c.Contains(Root, StringComparison.Ordinal))];

    public async ValueTask DisposeAsync()
    {
        StopDetachedOwners();
        StopStartedProcesses();
        if (Ready && Directory.Exists(VmsDir) && Directory.EnumerateFileSystemEntries(VmsDir).Any())
        {
            // What a failed test left (crashed VMs' namespaces are host-wide): reconcile before
            // the home, and the records that find those resources, are deleted.
            await RunAsync(["prune"], timeout: TimeSpan.FromMinutes(1));
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>
    /// Owners of <c>run -d</c> sandboxes this home's tests started (the CLI we ran has exited; the
    /// owner is its child, recorded with its start time in the VM directory): SIGTERM each one
    /// still running, so it stops its VM, and wait for it.
    /// </summary>
    private void StopDetachedOwners()
    {
        if (!Directory.Exists(VmsDir))
        {
            return;
        }

        var owners = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories(VmsDir))
        {
            if (OwnerRecord.IsOwnerAlive(dir, out _, out var pid))
            {
                Interop.Kill(pid, 15);
                owners.Add(pid);
            }
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (owners.Any(OwnerNative.IsAlive) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
    }

    private void StopStartedProcesses()
    {
        // A test that failed midway may have left its CLI running: stop it (and, through its
        // parent-death signal, its QEMU), by the PID we started.
        lock (_started)
        {
            foreach (var process in _started)
            {
                try
                {
                    if (!process.HasExited)
                    {
                        process.Kill(entireProcessTree: true);
                        process.WaitForExit(10_000);
                    }
                }
                catch (InvalidOperationException)
                {
                    // Already gone and disposed by its test.
                }
            }
        }
    }

    private static string? ReadCmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
