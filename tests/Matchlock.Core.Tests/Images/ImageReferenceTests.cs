using Matchlock.Core.Images;

namespace Matchlock.Core.Tests.Images;

public sealed class ImageReferenceTests
{
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
    [InlineData("busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000")]
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
}
