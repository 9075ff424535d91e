using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Registry;

public sealed class PlatformAndChallengeTests
{
    [Theory]
    [InlineData("linux/amd64", "linux", "amd64", null)]
    [InlineData("linux/arm64/v8", "linux", "arm64", "v8")]
    [InlineData("Linux/x86_64", "linux", "amd64", null)]
    [InlineData("linux/aarch64", "linux", "arm64", null)]
    public void Platforms_parse_with_kernel_spellings_normalised(string text, string os, string arch, string? variant)
    {
        var platform = Platform.Parse(text);

        Assert.Equal(new Platform(os, arch, variant), platform);
        Assert.Equal(variant is null ? $"{os}/{arch}" : $"{os}/{arch}/{variant}", platform.ToString());
    }

    [Theory]
    [InlineData("linux")]
    [InlineData("linux/")]
    [InlineData("a/b/c/d")]
    [InlineData("linux/amd 64")]
    public void Bad_platforms_are_rejected_with_the_expected_form(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => Platform.Parse(text));

        Assert.Contains("OS/ARCH", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("linux/arm64", "linux", "arm64", null, true)]
    [InlineData("linux/arm64/v8", "linux", "arm64", null, true)]
    [InlineData("linux/arm64", "linux", "arm64", "v8", true)]
    [InlineData("linux/arm/v7", "linux", "arm", "v6", false)]
    [InlineData("linux/arm", "linux", "arm", "v6", true)]
    [InlineData("linux/amd64", "windows", "amd64", null, false)]
    public void Index_entries_match_on_os_architecture_and_requested_variant(string requested, string os, string arch, string? variant, bool matches) =>
        Assert.Equal(matches, Platform.Parse(requested).IsMatchedBy(os, arch, variant));

    [Fact]
    public void Bearer_challenges_parse_quoted_params_with_commas()
    {
        var challenge = AuthChallenge.Parse(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:a/b:pull,push\", error=insufficient_scope");

        Assert.NotNull(challenge);
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth.docker.io/token", challenge["realm"]);
        Assert.Equal("registry.docker.io", challenge["Service"]);
        Assert.Equal("repository:a/b:pull,push", challenge["scope"]);
        Assert.Equal("insufficient_scope", challenge["error"]);
    }
}
