namespace Matchlock.Core;

/// <summary>
/// Where Matchlock keeps its files on the host (docs/CONTRACTS.md, "Paths on the host").
/// Values are read from the environment on every access so tests can point them elsewhere.
/// </summary>
public static class MatchlockPaths
{
    /// <summary><c>$MATCHLOCK_HOME</c>, else <c>~/.matchlock</c>.</summary>
    public static string Home =>
        NonEmpty("MATCHLOCK_HOME") ?? Path.Combine(UserHome, ".matchlock");

    /// <summary>Per-VM directories: <c>Home/vms</c>.</summary>
    public static string VmsDir => Path.Combine(Home, "vms");

    /// <summary>The local image store: <c>Home/images</c>.</summary>
    public static string ImagesDir => Path.Combine(Home, "images");

    /// <summary>Named volumes, one ext4 image <c>NAME.ext4</c> each: <c>Home/volumes</c>.</summary>
    public static string VolumesDir => Path.Combine(Home, "volumes");

    /// <summary><c>$MATCHLOCK_CACHE</c>, else <c>$XDG_CACHE_HOME/matchlock</c>, else <c>~/.cache/matchlock</c>.</summary>
    public static string CacheDir =>
        NonEmpty("MATCHLOCK_CACHE")
        ?? (NonEmpty("XDG_CACHE_HOME") is { } xdg
            ? Path.Combine(xdg, "matchlock")
            : Path.Combine(UserHome, ".cache", "matchlock"));

    private static string UserHome =>
        NonEmpty("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    // An empty variable means "unset" (as shells treat `VAR= cmd`), not "the current directory".
    private static string? NonEmpty(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
