namespace Matchlock.Core.Images;

/// <summary>A tagged image in the local store.</summary>
/// <param name="Tag">Canonical display form, e.g. <c>busybox:latest</c>.</param>
/// <param name="Id"><c>sha256:…</c> digest of the image config blob (what Docker calls the image id).</param>
/// <param name="RootfsPath">The read-only EROFS image of the flattened root filesystem.</param>
/// <param name="Config">How to run it (entrypoint, env, user, …).</param>
/// <param name="SizeBytes">Size of <paramref name="RootfsPath"/>.</param>
/// <param name="Created">When the image was stored here (the image's own time is <see cref="ImageConfig.Created"/>).</param>
/// <param name="Source">How it got here: the full reference it was pulled from, or <c>import</c>.</param>
/// <param name="Digest">The repository digest the tag resolved to at the registry (manifest or index); null for imports.</param>
public sealed record ImageRecord(
    string Tag,
    string Id,
    string RootfsPath,
    ImageConfig Config,
    long SizeBytes,
    DateTimeOffset Created,
    string Source,
    string? Digest = null);
