namespace Matchlock.Core.Images;

/// <summary>
/// No local image matches a reference. The message lists the images that exist and how to import
/// one, so the CLI can print it as is.
/// </summary>
public sealed class ImageNotFoundException : SandboxStartException
{
    public ImageNotFoundException(string message)
        : base(message)
    {
    }

    public ImageNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ImageNotFoundException(string reference, IReadOnlyList<string> available)
        : base(BuildMessage(reference, available))
    {
        ArgumentNullException.ThrowIfNull(available);
        Reference = reference;
        Available = available;
    }

    /// <summary>The reference that was looked up, as the caller wrote it.</summary>
    public string? Reference { get; }

    /// <summary>Tags of the images that do exist (display form).</summary>
    public IReadOnlyList<string> Available { get; } = [];

    private static string BuildMessage(string reference, IReadOnlyList<string> available)
    {
        var have = available.Count == 0
            ? "no images are stored yet"
            : "local images: " + string.Join(", ", available);
        return $"image \"{reference}\" not found ({have}); pull it with `matchlock pull IMAGE`, or import one with "
            + "`matchlock image import TAG < image.tar` (a `docker save` tarball), e.g. "
            + "`./setup.sh` imports busybox:latest";
    }
}
