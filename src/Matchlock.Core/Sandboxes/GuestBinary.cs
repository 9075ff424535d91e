namespace Matchlock.Core.Sandboxes;

/// <summary>Finds the static guest binary that becomes /init (docs/CONTRACTS.md).</summary>
public static class GuestBinary
{
    public const string EnvVar = "MATCHLOCK_GUEST_BIN";

    public static string Locate()
    {
        string[] candidates =
        [
            Environment.GetEnvironmentVariable(EnvVar) ?? "",
            Path.Combine(AppContext.BaseDirectory, "matchlock-guest"),
            "/usr/local/lib/matchlock/matchlock-guest",
        ];
        foreach (var candidate in candidates)
        {
            if (candidate.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new SandboxStartException($"the guest binary matchlock-guest was not found (looked in ${EnvVar}, next to matchlock, and /usr/local/lib/matchlock); run ./setup.sh to build it");
    }
}
