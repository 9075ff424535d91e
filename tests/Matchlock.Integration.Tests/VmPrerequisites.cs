namespace Matchlock.Integration.Tests;

/// <summary>
/// What the VM tier needs (installed matchlock, QEMU, kernel, the base image tarball). Missing
/// pieces skip the tests on a developer machine, and fail them when <c>MATCHLOCK_REQUIRE_VM=1</c> (CI).
/// Tests that need root, QEMU or namespaces but no image or CLI use <see cref="HostPrerequisites"/>.
/// </summary>
internal static class VmPrerequisites
{
    public static bool Required => HostPrerequisites.Required;

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string BaseImageTar => Path.Combine(RepoRoot, "artifacts", "busybox.tar");

    /// <summary>The matchlock binary under test: <c>$MATCHLOCK_BIN</c>, else the installed one.</summary>
    public static string MatchlockBin =>
        Environment.GetEnvironmentVariable("MATCHLOCK_BIN") is { Length: > 0 } bin ? bin : "/usr/local/bin/matchlock";

    /// <summary>Null when everything is there; otherwise what is missing and how to get it.</summary>
    public static string? Missing()
    {
        var missing = new List<string>();
        if (!File.Exists(MatchlockBin))
        {
            missing.Add($"{MatchlockBin} (./test.sh publishes it from this checkout; or run ./setup.sh, or set MATCHLOCK_BIN)");
        }

        if (!File.Exists("/usr/bin/qemu-system-x86_64"))
        {
            missing.Add("qemu-system-x86_64 (run ./setup.sh)");
        }

        if (!Directory.EnumerateFiles("/boot", "vmlinuz-*").Any())
        {
            missing.Add("a guest kernel in /boot (run ./setup.sh)");
        }

        if (!File.Exists(BaseImageTar))
        {
            missing.Add($"{BaseImageTar} (run ./setup.sh)");
        }

        return missing.Count == 0 ? null : "VM tests need: " + string.Join("; ", missing);
    }

    /// <summary>Skips (developer machine) or fails (CI) when the VM tier cannot run here.</summary>
    public static void Ensure()
    {
        if (Missing() is { } why)
        {
            HostPrerequisites.SkipOrFail(why);
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Matchlock.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (Matchlock.slnx) above " + AppContext.BaseDirectory);
    }
}
