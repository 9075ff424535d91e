namespace Matchlock.Core.Images.Registry;

/// <summary>
/// Why a registry operation failed, grouped by what the caller can do next: fix the name
/// (<see cref="NotFound"/>, <see cref="PlatformNotFound"/>), fix credentials (<see cref="Unauthorized"/>,
/// <see cref="Denied"/>, <see cref="Credentials"/>), retry later (<see cref="Unreachable"/>, some
/// <see cref="Protocol"/>), or give up on this image (the content errors).
/// </summary>
public enum RegistryErrorKind
{
    /// <summary>The repository, tag, digest or blob does not exist.</summary>
    NotFound,

    /// <summary>401 after authenticating as well as we could: no credentials, or rejected ones.</summary>
    Unauthorized,

    /// <summary>403: authenticated, but not allowed to pull this repository.</summary>
    Denied,

    /// <summary>Connection refused, DNS failure, TLS failure or timeout.</summary>
    Unreachable,

    /// <summary>The manifest or index is not valid JSON of the expected shape.</summary>
    InvalidManifest,

    /// <summary>A manifest, config or layer type we do not handle (schema 1, foreign layers, artifacts).</summary>
    UnsupportedMediaType,

    /// <summary>The index has no image for the requested platform.</summary>
    PlatformNotFound,

    /// <summary>Content does not hash to the digest it was asked for or announced with.</summary>
    DigestMismatch,

    /// <summary>A body ended before the announced size.</summary>
    Truncated,

    /// <summary>A body is larger than its descriptor or than our limit.</summary>
    TooLarge,

    /// <summary>An unexpected status or response (5xx, rate limit, malformed challenge).</summary>
    Protocol,

    /// <summary>Local credential configuration is broken: unreadable Docker config, missing or failing credential helper.</summary>
    Credentials,
}
