using System.Globalization;
using System.Text.Json;

namespace Matchlock.Core.Images.Registry;

public sealed partial class RegistryClient
{
    /// <summary>
    /// Resolves <paramref name="reference"/> to the image manifest for <paramref name="platform"/>:
    /// fetches what the tag or digest names; if that is an index (OCI) or manifest list (Docker),
    /// picks the platform's entry and fetches it by digest. Every manifest is checked against the
    /// digest it was asked for (or that the registry announced), then validated.
    /// </summary>
    /// <exception cref="RegistryException">Not found, not allowed, unreachable, not a usable image, or tampered with.</exception>
    public async Task<PulledManifest> GetManifestAsync(ImageReference reference, Platform platform, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(platform);
        var top = await FetchManifestAsync(reference, reference.ManifestReference, reference.Digest, cancellationToken);
        if (!RegistryMediaTypes.IsIndex(top.MediaType))
        {
            return ToPulled(reference, top, indexDigest: null);
        }

        var entry = SelectPlatform(reference, top, platform);
        var manifest = await FetchManifestAsync(reference, entry, entry, cancellationToken);
        if (!RegistryMediaTypes.IsImageManifest(manifest.MediaType))
        {
            throw new RegistryException(
                RegistryErrorKind.UnsupportedMediaType,
                $"{Name(reference)}: the {platform} entry of its index is itself an index ({manifest.MediaType}); nested indexes are not supported");
        }

        return ToPulled(reference, manifest, top.Digest);
    }

    private sealed record FetchedManifest(byte[] Bytes, string MediaType, string Digest, RegistryManifestDto Document);

    private async Task<FetchedManifest> FetchManifestAsync(
        ImageReference image, string tagOrDigest, string? expectedDigest, CancellationToken cancellationToken)
    {
        var what = expectedDigest is null ? $"manifest for tag {tagOrDigest}" : $"manifest {expectedDigest}";
        var limit = _options.MaxManifestBytes;
        using var response = await GetAsync(
            image, "manifests/" + tagOrDigest, what, expectedDigest is null ? "check the name and tag" : "check the name and digest",
            RegistryMediaTypes.ManifestAccept, cancellationToken);

        var contentType = response.Content.Headers.ContentType?.MediaType;
        if (contentType is not null && RegistryMediaTypes.IsSchema1(contentType))
        {
            throw Schema1(image);
        }

        if (response.Content.Headers.ContentLength is { } announced && announced > limit)
        {
            throw new RegistryException(
                RegistryErrorKind.TooLarge, $"{Name(image)}: {what} is too large: {FormatSize(announced)}, more than the {FormatSize(limit)} limit");
        }

        byte[] bytes;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(_options.ResponseTimeout);
            try
            {
                bytes = await ReadCappedAsync(response.Content, limit, timeout.Token) ?? throw new RegistryException(
                    RegistryErrorKind.TooLarge, $"{Name(image)}: {what} is too large: more than the {FormatSize(limit)} limit");
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw new RegistryException(
                    RegistryErrorKind.Truncated, $"{Name(image)}: reading {what} from {image.RegistryHost} failed ({e.Message}); pull again", e);
            }
        }

        if (response.Content.Headers.ContentLength is { } length && bytes.Length != length)
        {
            throw new RegistryException(
                RegistryErrorKind.Truncated, $"{Name(image)}: {what} ended after {bytes.Length} of {length} bytes; pull again");
        }

        var digest = RegistryMediaTypes.Sha256(bytes);
        if (expectedDigest is not null && digest != expectedDigest)
        {
            throw new RegistryException(
                RegistryErrorKind.DigestMismatch,
                $"{Name(image)}: {what} as served hashes to {digest}; the registry or something in between serves other content than was asked for");
        }

        // For a tag the registry's announced digest is the only check there is. Other algorithms
        // (sha512) are legal there but not computed here; the content is then trusted as served by tag.
        if (expectedDigest is null && response.Headers.NonValidated.TryGetValues("Docker-Content-Digest", out var values)
            && values.FirstOrDefault() is { } headerDigest && headerDigest.StartsWith("sha256:", StringComparison.Ordinal) && headerDigest != digest)
        {
            throw new RegistryException(
                RegistryErrorKind.DigestMismatch,
                $"{Name(image)}: {what} hashes to {digest} but the registry announced {headerDigest} (Docker-Content-Digest); the content was altered in transit, pull again");
        }

        RegistryManifestDto document;
        try
        {
            document = JsonSerializer.Deserialize(bytes, RegistryJsonContext.Default.RegistryManifestDto)
                ?? throw new JsonException("the document is null");
        }
        catch (JsonException e)
        {
            throw new RegistryException(RegistryErrorKind.InvalidManifest, $"{Name(image)}: {what} is not valid manifest JSON: {e.Message}", e);
        }

        return new FetchedManifest(bytes, MediaTypeOf(image, what, contentType, document), digest, document);
    }

    /// <summary>
    /// The manifest's type: the Content-Type when it is one we asked for, else the document's own
    /// <c>mediaType</c>, else inferred from its shape (old registries answer <c>application/json</c>).
    /// The two must agree when both are known: a document served as one type but declaring another
    /// is how type-confusion attacks look.
    /// </summary>
    private static string MediaTypeOf(ImageReference image, string what, string? contentType, RegistryManifestDto document)
    {
        static bool Known(string? type) => type is not null && (RegistryMediaTypes.IsIndex(type) || RegistryMediaTypes.IsImageManifest(type));

        if (document.SchemaVersion == 1 || (document.MediaType is { } declared1 && RegistryMediaTypes.IsSchema1(declared1)))
        {
            throw Schema1(image);
        }

        if (Known(contentType) && Known(document.MediaType) && contentType != document.MediaType)
        {
            throw new RegistryException(
                RegistryErrorKind.InvalidManifest, $"{Name(image)}: {what} is served as {contentType} but declares {document.MediaType}");
        }

        var type = Known(contentType) ? contentType!
            : Known(document.MediaType) ? document.MediaType!
            : document.MediaType is null && document.Manifests is not null ? RegistryMediaTypes.OciIndex
            : document.MediaType is null && document.Config is not null ? RegistryMediaTypes.OciManifest
            : null;
        return type ?? throw new RegistryException(
            RegistryErrorKind.UnsupportedMediaType,
            $"{Name(image)}: {what} has media type {document.MediaType ?? contentType ?? "(none)"}, which is not a container image manifest or index");
    }

    /// <summary>The digest of the index entry for <paramref name="platform"/>; attestation entries (<c>unknown/unknown</c>) are not images.</summary>
    private static string SelectPlatform(ImageReference image, FetchedManifest index, Platform platform)
    {
        var entries = index.Document.Manifests ?? throw new RegistryException(
            RegistryErrorKind.InvalidManifest, $"{Name(image)}: its index {index.Digest} has no \"manifests\" list");
        var images = entries
            .Where(e => e.Platform is { } p && !(p.Os == "unknown" && p.Architecture == "unknown"))
            .ToList();
        var match = images.FirstOrDefault(e => platform.IsMatchedBy(e.Platform!.Os, e.Platform.Architecture, e.Platform.Variant));
        if (match is null)
        {
            var available = images.Select(e => Platform.Describe(e.Platform!.Os, e.Platform.Architecture, e.Platform.Variant)).Distinct().ToList();
            throw new RegistryException(
                RegistryErrorKind.PlatformNotFound,
                available.Count == 0
                    ? $"{Name(image)} has no {platform} image; its index lists no platforms"
                    : $"{Name(image)} has no {platform} image; it has: {string.Join(", ", available)}; use --platform");
        }

        var descriptor = ToDescriptor(image, match, $"the {platform} entry of its index", requireMediaType: false);
        if (descriptor.MediaType is { Length: > 0 } type && !RegistryMediaTypes.IsImageManifest(type) && !RegistryMediaTypes.IsIndex(type))
        {
            throw new RegistryException(
                RegistryErrorKind.UnsupportedMediaType, $"{Name(image)}: the {platform} entry of its index has media type {type}, which is not an image manifest");
        }

        return descriptor.Digest;
    }

    private PulledManifest ToPulled(ImageReference image, FetchedManifest manifest, string? indexDigest)
    {
        var what = $"manifest {manifest.Digest}";
        var document = manifest.Document;
        if (document.SchemaVersion != 2)
        {
            throw new RegistryException(
                RegistryErrorKind.InvalidManifest,
                $"{Name(image)}: {what} has schemaVersion {document.SchemaVersion?.ToString(CultureInfo.InvariantCulture) ?? "(missing)"}, expected 2");
        }

        var config = ToDescriptor(image, document.Config ?? throw new RegistryException(
            RegistryErrorKind.InvalidManifest, $"{Name(image)}: {what} has no config"), $"the config of {what}");
        if (!RegistryMediaTypes.IsConfig(config.MediaType))
        {
            throw new RegistryException(
                RegistryErrorKind.UnsupportedMediaType,
                $"{Name(image)} is not a container image: its config has media type {config.MediaType} (an artifact such as a Helm chart or a signature?)");
        }

        if (config.Size > _options.MaxConfigBytes)
        {
            throw new RegistryException(
                RegistryErrorKind.TooLarge, $"{Name(image)}: its config is too large: {FormatSize(config.Size)}, more than the {FormatSize(_options.MaxConfigBytes)} limit");
        }

        var layers = new List<BlobDescriptor>();
        foreach (var (dto, i) in (document.Layers ?? throw new RegistryException(
            RegistryErrorKind.InvalidManifest, $"{Name(image)}: {what} has no \"layers\" list")).Select((l, i) => (l, i)))
        {
            var layer = ToDescriptor(image, dto, $"layer {i + 1} of {what}");
            if (RegistryMediaTypes.IsForeignLayer(layer.MediaType))
            {
                throw new RegistryException(
                    RegistryErrorKind.UnsupportedMediaType,
                    $"{Name(image)}: layer {i + 1} is non-distributable ({layer.MediaType}), as in Windows images; only Linux images can be pulled");
            }

            if (!RegistryMediaTypes.IsLayer(layer.MediaType))
            {
                throw new RegistryException(
                    RegistryErrorKind.UnsupportedMediaType,
                    $"{Name(image)}: layer {i + 1} has media type {layer.MediaType}, which is not a tar layer (tar, tar+gzip, tar+zstd)");
            }

            layers.Add(layer);
        }

        return new PulledManifest(manifest.Digest, manifest.MediaType, manifest.Bytes, indexDigest, indexDigest ?? manifest.Digest, config, layers);
    }

    /// <param name="requireMediaType">Blob descriptors must say what they are; an index entry's type is checked when its manifest arrives.</param>
    private static BlobDescriptor ToDescriptor(ImageReference image, RegistryDescriptorDto dto, string what, bool requireMediaType = true)
    {
        if (string.IsNullOrEmpty(dto.MediaType) && requireMediaType)
        {
            throw new RegistryException(RegistryErrorKind.InvalidManifest, $"{Name(image)}: {what} has no mediaType");
        }

        if (!RegistryMediaTypes.IsSha256Digest(dto.Digest))
        {
            throw new RegistryException(
                RegistryErrorKind.InvalidManifest,
                RegistryMediaTypes.IsWellFormedDigest(dto.Digest)
                    ? $"{Name(image)}: {what} has digest {dto.Digest}; only sha256 digests can be verified"
                    : $"{Name(image)}: {what} has a malformed digest \"{dto.Digest}\"");
        }

        if (dto.Size is not { } size || size < 0)
        {
            throw new RegistryException(RegistryErrorKind.InvalidManifest, $"{Name(image)}: {what} has a missing or negative size");
        }

        return new BlobDescriptor(dto.MediaType ?? "", dto.Digest!, size);
    }

    private static RegistryException Schema1(ImageReference image) => new(
        RegistryErrorKind.UnsupportedMediaType,
        $"{Name(image)}: schema 1 manifests are not supported (deprecated by Docker); re-push the image with a current Docker or pull a newer tag");

    internal static string FormatSize(long bytes) => bytes switch
    {
        >= 1024 * 1024 when bytes % (1024 * 1024) == 0 => $"{bytes / (1024 * 1024)} MiB",
        >= 1000 * 1000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.#} MB"),
        >= 1024 when bytes % 1024 == 0 => $"{bytes / 1024} KiB",
        _ => $"{bytes} bytes",
    };
}
