namespace Matchlock.Core.Tests.Images;

// Mutates process environment variables: keep it out of parallel runs with other readers of them.
[CollectionDefinition(nameof(EnvironmentCollection), DisableParallelization = true)]
public sealed class EnvironmentCollection;

[Collection(nameof(EnvironmentCollection))]
public sealed class MatchlockPathsTests
{
    [Fact]
    public void Home_and_cache_follow_their_environment_variables_with_documented_fallbacks()
    {
        var saved = new[] { "MATCHLOCK_HOME", "MATCHLOCK_CACHE", "XDG_CACHE_HOME", "HOME" }
            .ToDictionary(n => n, Environment.GetEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable("HOME", "/h");
            Environment.SetEnvironmentVariable("MATCHLOCK_HOME", null);
            Environment.SetEnvironmentVariable("MATCHLOCK_CACHE", null);
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", null);
            Assert.Equal("/h/.matchlock", MatchlockPaths.Home);
            Assert.Equal("/h/.matchlock/images", MatchlockPaths.ImagesDir);
            Assert.Equal("/h/.matchlock/vms", MatchlockPaths.VmsDir);
            Assert.Equal("/h/.cache/matchlock", MatchlockPaths.CacheDir);

            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/xdg");
            Assert.Equal("/xdg/matchlock", MatchlockPaths.CacheDir);

            Environment.SetEnvironmentVariable("MATCHLOCK_HOME", "/m");
            Environment.SetEnvironmentVariable("MATCHLOCK_CACHE", "/c");
            Assert.Equal("/m/images", MatchlockPaths.ImagesDir);
            Assert.Equal("/c", MatchlockPaths.CacheDir);
        }
        finally
        {
            foreach (var (name, value) in saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }
}
