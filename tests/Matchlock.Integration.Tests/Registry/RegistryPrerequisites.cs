namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// What the registry tier needs: Debian's <c>docker-registry</c> and <c>htpasswd</c> for the
/// fixtures, plus the matchlock CLI for the pull tests. Missing pieces skip on a developer
/// machine and fail under <c>MATCHLOCK_REQUIRE_VM=1</c>, as <see cref="VmPrerequisites"/> does.
/// </summary>
internal static class RegistryPrerequisites
{
    public const string RegistryProgram = "/usr/bin/docker-registry";
    public const string HtpasswdProgram = "/usr/bin/htpasswd";

    /// <summary>Null when the fixtures can run; otherwise what is missing and how to get it.</summary>
    public static string? MissingForFixtures()
    {
        var missing = new List<string>();
        if (!File.Exists(RegistryProgram))
        {
            missing.Add("docker-registry (apt-get install docker-registry, or ./setup.sh)");
        }

        if (!File.Exists(HtpasswdProgram))
        {
            missing.Add("htpasswd (apt-get install apache2-utils, or ./setup.sh)");
        }

        if (!File.Exists("/bin/busybox"))
        {
            missing.Add("a static /bin/busybox for the test images (apt-get install busybox-static)");
        }

        return missing.Count == 0 ? null : "registry tests need: " + string.Join("; ", missing);
    }

    /// <summary>Fixtures only (no matchlock CLI): the fixture smoke tests.</summary>
    public static void EnsureFixtures() => SkipOrFail(MissingForFixtures());

    /// <summary>Fixtures and the matchlock CLI (no VM): the pull tests.</summary>
    public static void EnsureCli()
    {
        var why = MissingForFixtures();
        if (why is null && !File.Exists(VmPrerequisites.MatchlockBin))
        {
            why = $"pull tests need {VmPrerequisites.MatchlockBin} (run ./setup.sh or set MATCHLOCK_BIN)";
        }

        SkipOrFail(why);
    }

    private static void SkipOrFail(string? why)
    {
        if (why is not null)
        {
            HostPrerequisites.SkipOrFail(why);
        }
    }
}
