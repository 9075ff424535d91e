namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>-e NAME</c> takes NAME from the caller's environment; when it is not set there the original
/// refuses the run (<c>invalid environment variable NAME</c>) instead of dropping it, and so do we,
/// before anything is created (docs/COMPATIBILITY.md "CLI").
/// </summary>
internal static class EnvFlags
{
    /// <exception cref="ArgumentException">A bare NAME is not set in this environment.</exception>
    public static void RequireBareNamesSet(IEnumerable<string> flags)
    {
        foreach (var flag in flags)
        {
            if (!flag.Contains('=', StringComparison.Ordinal) && Environment.GetEnvironmentVariable(flag) is null)
            {
                throw new ArgumentException($"invalid environment variable {flag}: -e {flag} takes its value from this environment, where it is not set; pass {flag}=VALUE");
            }
        }
    }
}
