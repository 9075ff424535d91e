namespace Matchlock.Core.Images.Registry;

/// <summary>
/// The platform-specific image manifest a reference resolved to, verified against its digest.
/// </summary>
/// <param name="Digest">Digest of <paramref name="Bytes"/>, the platform-specific manifest.</param>
/// <param name="MediaType">OCI image manifest or Docker schema 2 manifest media type.</param>
/// <param name="Bytes">The manifest exactly as served (the digest is over these bytes).</param>
/// <param name="IndexDigest">Digest of the index or manifest list the reference pointed at, else null.</param>
/// <param name="RepoDigest">What the reference resolved to (<c>IndexDigest ?? Digest</c>): record it as <c>name@RepoDigest</c>.</param>
/// <param name="Config">The image config blob.</param>
/// <param name="Layers">The layers, base first; may be empty.</param>
public sealed record PulledManifest(
    string Digest,
    string MediaType,
    byte[] Bytes,
    string? IndexDigest,
    string RepoDigest,
    BlobDescriptor Config,
    IReadOnlyList<BlobDescriptor> Layers);
