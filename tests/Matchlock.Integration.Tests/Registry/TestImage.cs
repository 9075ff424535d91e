using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>Content with a media type, addressed by its sha256 digest.</summary>
public sealed record Blob(string MediaType, byte[] Content)
{
    public string Digest { get; } = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Content));

    public long Size => Content.LongLength;

    /// <summary>The blob's file name in a store or registry (<c>sha256/&lt;hex&gt;</c> → hex).</summary>
    public string Hex => Digest["sha256:".Length..];

    /// <summary>An OCI descriptor for this blob; <paramref name="size"/> overrides the true size (for lying manifests).</summary>
    public JsonObject Descriptor(long? size = null) => new()
    {
        ["mediaType"] = MediaType,
        ["digest"] = Digest,
        ["size"] = size ?? Size,
    };
}

/// <summary>
/// An image built in memory: a manifest (or index / manifest list) and everything it references.
/// <see cref="Blobs"/> are config and layers of a single-platform image; <see cref="Children"/>
/// are the platform images of an index, pushed by digest before the index.
/// </summary>
public sealed record TestImage(Blob Manifest, IReadOnlyList<Blob> Blobs, IReadOnlyList<TestImage> Children)
{
    /// <summary>The manifest's digest: what a pull prints after <c>Digest:</c>.</summary>
    public string Digest => Manifest.Digest;

    public string MediaType => Manifest.MediaType;

    /// <summary>Config blob of a single-platform image (null for an index).</summary>
    public Blob? Config { get; init; }

    /// <summary>Layer blobs of a single-platform image, base first.</summary>
    public IReadOnlyList<Blob> Layers { get; init; } = [];

    /// <summary>The image id matchlock reports: the config's digest.</summary>
    public string Id => Config?.Digest ?? throw new InvalidOperationException("an index has no single image id");

    /// <summary>Content of <c>/etc/matchlock-test</c> in this image (null for an index or a bad image without it).</summary>
    public string? Marker { get; init; }

    /// <summary>Every blob and manifest this image consists of, children included (for counting a store).</summary>
    public IEnumerable<Blob> AllContent() =>
        Children.SelectMany(c => c.AllContent()).Concat(Blobs).Append(Manifest).DistinctBy(b => b.Digest);
}
