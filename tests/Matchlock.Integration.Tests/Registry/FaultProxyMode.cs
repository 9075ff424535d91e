namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// What a <see cref="FaultProxy"/> does to the traffic; immutable, swapped whole with
/// <see cref="FaultProxy.Mode"/>. Faults on blob bodies apply to every blob GET larger than the
/// threshold (configs and manifests are small, so a threshold of a few KiB hits layers only).
/// </summary>
public sealed record FaultProxyMode
{
    public static FaultProxyMode PassThrough { get; } = new();

    /// <summary>Every <c>/v2/</c> request needs a Bearer token from the proxy's <c>/token</c> endpoint.</summary>
    public bool RequireBearer { get; init; }

    /// <summary>With <see cref="RequireBearer"/>: the token endpoint wants these (HTTP Basic); null = anonymous tokens.</summary>
    public RegistryCredentials? TokenCredentials { get; init; }

    /// <summary>Blob GETs answer 307 to <c>/_storage/…</c> on the proxy, which rejects (400) and records an Authorization header.</summary>
    public bool RedirectBlobs { get; init; }

    /// <summary>Blob bodies stop after this many bytes and the connection is aborted.</summary>
    public long? TruncateBlobsAfter { get; init; }

    /// <summary>Blob bodies stop after this many bytes until <see cref="FaultProxy.ReleaseStalls"/> (or the client goes away).</summary>
    public long? StallBlobsAfter { get; init; }

    /// <summary>Every <c>/v2/</c> request is answered with this status (403, 500, …).</summary>
    public int? FailAllWith { get; init; }
}
