namespace Matchlock.Core.Images.Registry;

/// <summary>A content-addressed blob (config or layer) as a manifest describes it; <see cref="Digest"/> is <c>sha256:hex</c>.</summary>
public sealed record BlobDescriptor(string MediaType, string Digest, long Size);
