namespace Matchlock.Core.Images.Registry;

public sealed partial class RegistryClient
{
    /// <summary>
    /// Reads a small blob (the image config) into memory, verified against its digest and size;
    /// refuses blobs over <see cref="RegistryClientOptions.MaxConfigBytes"/> before fetching them.
    /// </summary>
    /// <exception cref="RegistryException">Not found, unreachable, too large, truncated or tampered with.</exception>
    public async Task<byte[]> GetBlobAsync(ImageReference reference, BlobDescriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        CheckDescriptor(blob);
        if (blob.Size > _options.MaxConfigBytes)
        {
            throw new RegistryException(
                RegistryErrorKind.TooLarge,
                $"{Name(reference)}: blob {blob.Digest} is {FormatSize(blob.Size)}, more than the {FormatSize(_options.MaxConfigBytes)} limit for configs");
        }

        await using var stream = await OpenBlobAsync(reference, blob, cancellationToken);
        var bytes = new byte[blob.Size];
        await stream.ReadExactlyAsync(bytes, cancellationToken);

        // The last byte already triggered verification; for an empty blob this read is what does.
        _ = await stream.ReadAsync(new byte[1], cancellationToken);
        return bytes;
    }

    /// <summary>
    /// Opens a blob (a layer, possibly many GB) as a stream of exactly <see cref="BlobDescriptor.Size"/>
    /// bytes, nothing buffered. The stream hashes what it passes on; reading the last byte throws
    /// <see cref="RegistryException"/> (<see cref="RegistryErrorKind.DigestMismatch"/>,
    /// <see cref="RegistryErrorKind.TooLarge"/>) if the blob is not what the descriptor says, and a body
    /// that ends early throws <see cref="RegistryErrorKind.Truncated"/>. The caller disposes the stream.
    /// </summary>
    /// <exception cref="RegistryException">Not found, unreachable, or a Content-Length that contradicts the descriptor.</exception>
    public async Task<Stream> OpenBlobAsync(ImageReference reference, BlobDescriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        CheckDescriptor(blob);
        var response = await GetAsync(
            reference, "blobs/" + blob.Digest, $"blob {blob.Digest}", "the registry lost the blob or the manifest is broken", null, cancellationToken);
        try
        {
            if (response.Content.Headers.ContentLength is { } length && length != blob.Size)
            {
                throw new RegistryException(
                    length < blob.Size ? RegistryErrorKind.Truncated : RegistryErrorKind.TooLarge,
                    $"{Name(reference)}: blob {blob.Digest} is served with Content-Length {length}, but its manifest says {blob.Size} bytes");
            }

            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            return new VerifyingBlobStream(response, body, blob, Name(reference));
        }
        catch
        {
            // Ownership passes to the stream only on success.
            response.Dispose();
            throw;
        }
    }

    private static void CheckDescriptor(BlobDescriptor blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (!RegistryMediaTypes.IsSha256Digest(blob.Digest) || blob.Size < 0)
        {
            throw new ArgumentException($"blob descriptor needs a sha256 digest and a size ≥ 0, got {blob.Digest} ({blob.Size} bytes)", nameof(blob));
        }
    }
}
