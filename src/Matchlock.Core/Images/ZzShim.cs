namespace Matchlock.Core.Images
{

// TEMPORARY until the registry-client branch lands (ImageReference digests). Not to be committed.
internal static class ImageReferenceShim
{
    extension(ImageReference r)
    {
        public string? Digest => null;

        public string RepositoryDisplayName => r.DisplayName[..r.DisplayName.LastIndexOf(':')];
    }
}
}

namespace Matchlock.Core.Images.Registry
{
    public sealed record Platform(string Os, string Architecture, string? Variant = null)
    {
        public static Platform Default { get; } = new("linux", "amd64");
        public static Platform Parse(string text) => throw new NotImplementedException(text);
    }

    public sealed record BlobDescriptor(string MediaType, string Digest, long Size);

    public sealed record PulledManifest(string Digest, string MediaType, byte[] Bytes, string? IndexDigest, string RepoDigest, BlobDescriptor Config, IReadOnlyList<BlobDescriptor> Layers);

    public sealed class RegistryClientOptions;

    public sealed class RegistryClient(RegistryClientOptions? options = null) : IDisposable
    {
        public RegistryClientOptions? Options { get; } = options;
        public Task<PulledManifest> GetManifestAsync(ImageReference reference, Platform platform, CancellationToken cancellationToken) => throw new NotImplementedException();
        public Task<byte[]> GetBlobAsync(ImageReference reference, BlobDescriptor blob, CancellationToken cancellationToken) => throw new NotImplementedException();
        public Task<Stream> OpenBlobAsync(ImageReference reference, BlobDescriptor blob, CancellationToken cancellationToken) => throw new NotImplementedException();
        public void Dispose() { }
    }

    public sealed class RegistryException : Exception
    {
    }
}
