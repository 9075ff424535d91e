using Matchlock.Core.Vfs.Hooks;

namespace Matchlock.Core.Tests.Vfs.Hooks;

public sealed class VfsPathGlobTests
{
    [Theory]
    [InlineData("/workspace/*", "/workspace/a.txt", true)]
    [InlineData("/workspace/*", "/workspace/dir/a.txt", false)] // * stays in one component, as Go's filepath.Match
    [InlineData("/workspace/**", "/workspace/dir/a.txt", true)]
    [InlineData("/workspace/**", "/workspace", false)]
    [InlineData("/workspace/**/*.env", "/workspace/a/b/.env", true)]
    [InlineData("/workspace/*.txt", "/workspace/a.TXT", false)] // case-sensitive, as guest paths are
    [InlineData("/workspace/blocked.txt", "/workspace/blocked.txt", true)]
    [InlineData("/workspace/blocked.txt", "/workspace/blocked.txt2", false)]
    [InlineData("/w/?.c", "/w/a.c", true)]
    [InlineData("/w/?.c", "/w//.c", false)]
    [InlineData("/w/[a-c]x", "/w/bx", true)]
    [InlineData("/w/[^a-c]x", "/w/bx", false)]
    [InlineData("/w/[!a-c]x", "/w/dx", true)]
    [InlineData("/w/\\*", "/w/*", true)]
    [InlineData("/w/\\*", "/w/a", false)]
    [InlineData("**", "/anything/at/all", true)]
    public void Matches_like_go_filepath_match_plus_double_star(string pattern, string path, bool expected)
    {
        Assert.Null(VfsPathGlob.Problem(pattern));
        Assert.Equal(expected, VfsPathGlob.IsMatch(pattern, path));
    }

    [Theory]
    [InlineData("/workspace/secret/**", "/workspace/secret", true)]
    [InlineData("/workspace/secret/*.key", "/workspace/secret", true)]
    [InlineData("/workspace/secret/*.key", "/workspace", true)]
    [InlineData("/workspace/secret/*.key", "/workspace/other", false)]
    [InlineData("/workspace/*.key", "/workspace/dir", false)] // * stays in one component
    [InlineData("/workspace/**/*.key", "/workspace/dir", true)]
    [InlineData("/workspace/a", "/workspace/a", false)] // the name itself is IsMatch's job
    public void May_match_below_says_whether_a_folder_holds_paths_a_rule_could_cover(string pattern, string directory, bool expected) =>
        Assert.Equal(expected, VfsPathGlob.MayMatchBelow(pattern, directory));

    [Theory]
    [InlineData("workspace/*", "absolute")]
    [InlineData("/w/[abc", "unclosed")]
    [InlineData("/w/x\\", "backslash")]
    public void Unusable_patterns_are_explained(string pattern, string expected) =>
        Assert.Contains(expected, VfsPathGlob.Problem(pattern), StringComparison.Ordinal);

    [Fact]
    public void A_pathological_pattern_ends_quickly()
    {
        var pattern = "/" + string.Concat(Enumerable.Repeat("**a", 30)) + "b";
        var path = "/" + new string('a', 200);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(VfsPathGlob.IsMatch(pattern, path));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"took {watch.Elapsed}");
    }
}
