using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Images;

public sealed class ImageReferenceTests
{
    private const string Hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string Digest = "sha256:" + Hex64;

    [Theory]
    [InlineData("busybox", "busybox:latest", "docker.io/library/busybox:latest")]
    [InlineData("busybox:latest", "busybox:latest", "docker.io/library/busybox:latest")]
    [InlineData("library/busybox", "busybox:latest", "docker.io/library/busybox:latest")]
    [InlineData("docker.io/library/busybox:latest", "busybox:latest", "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/library/busybox", "busybox:latest", "docker.io/library/busybox:latest")]
    [InlineData("user/app:1.0", "user/app:1.0", "docker.io/user/app:1.0")]
    [InlineData("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest")]
    [InlineData("ghcr.io/org/tool:v2.1", "ghcr.io/org/tool:v2.1", "ghcr.io/org/tool:v2.1")]
    [InlineData("localhost/x", "localhost/x:latest", "localhost/x:latest")]
    public void Equivalent_spellings_normalise_to_one_display_form(string input, string display, string full)
    {
        var reference = ImageReference.Parse(input);

        Assert.Equal(display, reference.DisplayName);
        Assert.Equal(full, reference.FullName);
        Assert.Equal(reference, ImageReference.Parse(display));
    }

    [Theory]
    [InlineData("")]
    [InlineData("BusyBox")]
    [InlineData("busybox@sha512:" + Hex64 + Hex64)]
    [InlineData("busybox@sha256:" + "ABCDEF" + "0000000000000000000000000000000000000000000000000000000000")]
    [InlineData("busybox@sha256:0000")]
    [InlineData("busybox@")]
    [InlineData("busybox:@sha256:" + Hex64)]
    [InlineData("busybox:")]
    [InlineData("busy box")]
    [InlineData("a//b")]
    [InlineData("../etc")]
    public void Invalid_references_are_rejected_with_the_reason(string input)
    {
        var e = Assert.Throws<ArgumentException>(() => ImageReference.Parse(input));

        Assert.Contains("invalid image reference", e.Message, StringComparison.Ordinal);
        Assert.False(ImageReference.TryParse(input, out _));
    }

    [Theory]
    [InlineData("alpine@" + Digest, null, "alpine@" + Digest, "docker.io/library/alpine@" + Digest)]
    [InlineData("alpine:3.20@" + Digest, "3.20", "alpine@" + Digest, "docker.io/library/alpine:3.20@" + Digest)]
    [InlineData("localhost:5000/app@" + Digest, null, "localhost:5000/app@" + Digest, "localhost:5000/app@" + Digest)]
    [InlineData("ghcr.io/org/tool:v1@" + Digest, "v1", "ghcr.io/org/tool@" + Digest, "ghcr.io/org/tool:v1@" + Digest)]
    public void Digest_references_pin_the_digest_and_display_without_the_tag(string input, string? tag, string display, string full)
    {
        var reference = ImageReference.Parse(input);

        Assert.Equal(Digest, reference.Digest);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(Digest, reference.ManifestReference);
        Assert.Equal(display, reference.DisplayName);
        Assert.Equal(full, reference.FullName);
    }

    [Fact]
    public void A_reference_without_tag_or_digest_means_latest()
    {
        var reference = ImageReference.Parse("alpine");

        Assert.Equal("latest", reference.Tag);
        Assert.Null(reference.Digest);
        Assert.Equal("latest", reference.ManifestReference);
    }

    [Fact]
    public void Other_digest_algorithms_are_rejected_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => ImageReference.Parse("alpine@sha512:" + Hex64 + Hex64));

        Assert.Contains("sha512", e.Message, StringComparison.Ordinal);
        Assert.Contains("only sha256", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("busybox", "registry-1.docker.io")]
    [InlineData("index.docker.io/user/app", "registry-1.docker.io")]
    [InlineData("localhost:5000/app", "localhost:5000")]
    [InlineData("ghcr.io/org/tool", "ghcr.io")]
    public void Docker_Hub_is_served_by_its_registry_host(string input, string host) =>
        Assert.Equal(host, ImageReference.Parse(input).RegistryHost);

    [Fact]
    public void WithTag_and_WithDigest_switch_between_tag_and_pin()
    {
        var pinned = ImageReference.Parse("alpine:3.20@" + Digest);

        Assert.Equal("alpine:3.20", pinned.WithTag("3.20").DisplayName);
        Assert.Null(pinned.WithTag("3.20").Digest);
        Assert.Equal(ImageReference.Parse("alpine@" + Digest), ImageReference.Parse("alpine:edge").WithDigest(Digest));
        Assert.Throws<ArgumentException>(() => pinned.WithDigest("sha256:xyz"));
        Assert.Throws<ArgumentException>(() => pinned.WithTag("bad tag"));
    }
}
