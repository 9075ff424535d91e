using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Matchlock.Core.Images.Registry;

/// <summary>Media types of the OCI image-spec and Docker's image manifest v2 schema 2, and what we accept of them.</summary>
internal static partial class RegistryMediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
    public const string DockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";

    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";

    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// <summary>What we send as <c>Accept</c> for manifests; schema 1 is left out so registries that can convert do.</summary>
    public static readonly string[] ManifestAccept = [OciIndex, OciManifest, DockerManifestList, DockerManifest];

    public static bool IsIndex(string mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsImageManifest(string mediaType) => mediaType is OciManifest or DockerManifest;

    public static bool IsSchema1(string mediaType) => mediaType is DockerSchema1 or DockerSchema1Signed;

    public static bool IsLayer(string mediaType) => mediaType is OciLayer or OciLayerGzip or OciLayerZstd or DockerLayerGzip;

    /// <summary>Windows base layers and other blobs the registry is not allowed to serve (OCI "non-distributable").</summary>
    public static bool IsForeignLayer(string mediaType) =>
        mediaType.StartsWith("application/vnd.oci.image.layer.nondistributable.", StringComparison.Ordinal)
        || mediaType.StartsWith("application/vnd.docker.image.rootfs.foreign.", StringComparison.Ordinal);

    public static bool IsConfig(string mediaType) => mediaType is OciConfig or DockerConfig;

    /// <summary><c>sha256:</c> and 64 lower-case hex digits: the only digest form we can verify.</summary>
    public static bool IsSha256Digest(string? digest) => digest is not null && Sha256Regex().IsMatch(digest);

    /// <summary>Any digest of the OCI grammar (<c>algorithm:encoded</c>), to tell "unsupported algorithm" from "garbage".</summary>
    public static bool IsWellFormedDigest(string? digest) => digest is not null && DigestRegex().IsMatch(digest);

    public static string Sha256(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    [GeneratedRegex("^sha256:[a-f0-9]{64}$")]
    private static partial Regex Sha256Regex();

    [GeneratedRegex("^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")]
    private static partial Regex DigestRegex();
}
