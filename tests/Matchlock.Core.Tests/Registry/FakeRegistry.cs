using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Registry;

/// <summary>
/// An in-memory OCI registry behind an <see cref="HttpMessageHandler"/>: manifests by tag and digest,
/// blobs, a token service on another host, blob redirects to a third host, and hooks for faults.
/// Records every request so tests can check what was sent where.
/// </summary>
internal sealed class FakeRegistry : HttpMessageHandler
{
    public const string Host = "registry.test";
    public const string AuthHost = "auth.test";
    public const string BlobHost = "blobs.test";

    private readonly Dictionary<string, (byte[] Bytes, string MediaType)> _manifests = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _tokens;

    public enum AuthMode
    {
        None,
        Bearer,
        Basic,
    }

    public sealed record Request(HttpMethod Method, Uri Uri, string? Authorization, string? Accept);

    public AuthMode Auth { get; set; }

    /// <summary>Credentials the registry (Basic) or token service (Bearer) demands; null: Bearer tokens are free.</summary>
    public (string User, string Password)? RequiredCredentials { get; set; }

    public bool RedirectBlobs { get; set; }

    /// <summary>Answers instead of the registry when it returns non-null.</summary>
    public Func<HttpRequestMessage, HttpResponseMessage?>? Fault { get; set; }

    public List<Request> Requests { get; } = [];

    public IEnumerable<Request> To(string host) => Requests.Where(r => r.Uri.Authority == host);

    public static string Digest(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    public string AddBlob(byte[] bytes)
    {
        var digest = Digest(bytes);
        _blobs[digest] = bytes;
        return digest;
    }

    public string PutManifest(string repository, string? tag, byte[] bytes, string mediaType)
    {
        var digest = Digest(bytes);
        _manifests[$"{repository}|{digest}"] = (bytes, mediaType);
        if (tag is not null)
        {
            _manifests[$"{repository}|{tag}"] = (bytes, mediaType);
        }

        return digest;
    }

    /// <summary>Adds an image (config + layers) and returns its manifest digest and size.</summary>
    public (string Digest, int Size) AddImage(
        string repository, string? tag, byte[][] layers, string architecture = "amd64", bool docker = false, string? layerMediaType = null)
    {
        var config = Encoding.UTF8.GetBytes(
            "{\"architecture\":\"" + architecture + "\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        var layerType = layerMediaType ?? (docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.oci.image.layer.v1.tar+gzip");
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = docker ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor(docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json", config),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)Descriptor(layerType, l))]),
        };
        var bytes = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        return (PutManifest(repository, tag, bytes, (string)manifest["mediaType"]!), bytes.Length);
    }

    /// <summary>Adds an index over (digest, size, os, arch, variant) entries; returns its digest.</summary>
    public string AddIndex(string repository, string tag, bool docker, params (string Digest, int Size, string Os, string Arch, string? Variant)[] entries)
    {
        var type = docker ? "application/vnd.docker.distribution.manifest.list.v2+json" : "application/vnd.oci.image.index.v1+json";
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = type,
            ["manifests"] = new JsonArray([.. entries.Select(e => (JsonNode)new JsonObject
            {
                ["mediaType"] = docker ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json",
                ["digest"] = e.Digest,
                ["size"] = e.Size,
                ["platform"] = e.Variant is null
                    ? new JsonObject { ["os"] = e.Os, ["architecture"] = e.Arch }
                    : new JsonObject { ["os"] = e.Os, ["architecture"] = e.Arch, ["variant"] = e.Variant },
            })]),
        };
        return PutManifest(repository, tag, Encoding.UTF8.GetBytes(index.ToJsonString()), type);
    }

    private JsonObject Descriptor(string mediaType, byte[] content) => new()
    {
        ["mediaType"] = mediaType,
        ["digest"] = AddBlob(content),
        ["size"] = content.Length,
    };

    public static HttpResponseMessage Json(HttpStatusCode status, string json) => new(status)
    {
        Content = new StringContent(json, Encoding.UTF8, "application/json"),
    };

    public static HttpRequestException Refused() =>
        new(HttpRequestError.ConnectionError, "Connection refused (registry.test:443)", new SocketException((int)SocketError.ConnectionRefused));

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            Requests.Add(new Request(request.Method, request.RequestUri!, request.Headers.Authorization?.ToString(), request.Headers.Accept.ToString()));
        }

        var response = Fault?.Invoke(request) ?? Answer(request);
        response.RequestMessage = request;
        return Task.FromResult(response);
    }

    private HttpResponseMessage Answer(HttpRequestMessage request)
    {
        var uri = request.RequestUri!;
        return uri.Authority switch
        {
            AuthHost => Token(request),
            BlobHost when uri.AbsolutePath.StartsWith("/blob/", StringComparison.Ordinal) => Blob(uri.AbsolutePath["/blob/".Length..]),
            Host => Registry(request),
            _ => throw new HttpRequestException(HttpRequestError.NameResolutionError, $"Name or service not known ({uri.Authority})"),
        };
    }

    private HttpResponseMessage Token(HttpRequestMessage request)
    {
        if (RequiredCredentials is { } creds && request.Headers.Authorization?.ToString() != BasicOf(creds.User, creds.Password))
        {
            return Json(HttpStatusCode.Unauthorized, """{"details":"incorrect username or password"}""");
        }

        var token = $"tok-{Interlocked.Increment(ref _tokens)}";
        return Json(HttpStatusCode.OK, $$"""{"token":"{{token}}","expires_in":300}""");
    }

    public static string BasicOf(string user, string password) =>
        "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    private HttpResponseMessage Registry(HttpRequestMessage request)
    {
        var authorization = request.Headers.Authorization?.ToString();
        switch (Auth)
        {
            case AuthMode.Bearer when authorization is null || !authorization.StartsWith("Bearer tok-", StringComparison.Ordinal):
                return Challenge($"Bearer realm=\"https://{AuthHost}/token\",service=\"{Host}\"");
            case AuthMode.Basic when RequiredCredentials is not { } creds || authorization != BasicOf(creds.User, creds.Password):
                return Challenge("Basic realm=\"fake\"");
        }

        var path = request.RequestUri!.AbsolutePath;
        foreach (var (marker, lookup) in new (string, Func<string, string, HttpResponseMessage>)[] { ("/manifests/", Manifest), ("/blobs/", RegistryBlob) })
        {
            var at = path.LastIndexOf(marker, StringComparison.Ordinal);
            if (path.StartsWith("/v2/", StringComparison.Ordinal) && at > 4)
            {
                return lookup(path[4..at], path[(at + marker.Length)..]);
            }
        }

        return Json(HttpStatusCode.NotFound, """{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}""");
    }

    private static HttpResponseMessage Challenge(string header)
    {
        var response = Json(HttpStatusCode.Unauthorized, """{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}""");
        response.Headers.TryAddWithoutValidation("WWW-Authenticate", header);
        return response;
    }

    private HttpResponseMessage Manifest(string repository, string reference)
    {
        if (!_manifests.TryGetValue($"{repository}|{reference}", out var manifest))
        {
            return Json(HttpStatusCode.NotFound, """{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}""");
        }

        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(manifest.Bytes) };
        response.Content.Headers.ContentType = new MediaTypeHeaderValue(manifest.MediaType);
        response.Headers.TryAddWithoutValidation("Docker-Content-Digest", Digest(manifest.Bytes));
        return response;
    }

    private HttpResponseMessage RegistryBlob(string repository, string digest)
    {
        if (RedirectBlobs)
        {
            var redirect = new HttpResponseMessage(HttpStatusCode.TemporaryRedirect);
            redirect.Headers.Location = new Uri($"https://{BlobHost}/blob/{digest}?X-Signature=abc");
            return redirect;
        }

        return Blob(digest);
    }

    private HttpResponseMessage Blob(string digest) =>
        _blobs.TryGetValue(digest, out var bytes)
            ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(bytes) }
            : Json(HttpStatusCode.NotFound, """{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}""");
}

/// <summary>A credential source that hands out one fixed credential (or none) and counts the lookups.</summary>
internal sealed class FixedCredentials(RegistryCredential? credential) : IRegistryCredentialSource
{
    public int Lookups { get; private set; }

    public Task<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken)
    {
        Lookups++;
        return Task.FromResult(credential);
    }
}

/// <summary>A body stream without a known length (so no Content-Length), like a chunked response.</summary>
internal sealed class UnknownLengthContent(byte[] bytes) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
