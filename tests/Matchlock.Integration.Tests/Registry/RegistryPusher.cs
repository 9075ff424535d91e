using System.Net;
using System.Net.Http.Headers;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Pushes <see cref="TestImage"/>s with the distribution API: monolithic blob uploads (POST
/// <c>/blobs/uploads/</c>, then PUT the Location with <c>digest=</c>) and manifest PUTs with the
/// manifest's own Content-Type. HTTP Basic on every request when the registry needs it.
/// </summary>
public sealed class RegistryPusher : IDisposable
{
    private readonly HttpClient _http;

    public RegistryPusher(Uri registry, RegistryCredentials? credentials)
    {
        _http = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
        {
            BaseAddress = registry,
            Timeout = TimeSpan.FromSeconds(60),
        };
        if (credentials is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", credentials.BasicParameter);
        }
    }

    /// <summary>Pushes an image (an index's children by digest first) and tags it <paramref name="reference"/>.</summary>
    public async Task PushAsync(string repository, string reference, TestImage image, CancellationToken cancellationToken = default)
    {
        foreach (var child in image.Children)
        {
            await PushAsync(repository, child.Digest, child, cancellationToken);
        }

        foreach (var blob in image.Blobs)
        {
            await PushBlobAsync(repository, blob, cancellationToken);
        }

        await PutManifestAsync(repository, reference, image.Manifest, cancellationToken);
    }

    public async Task PushBlobAsync(string repository, Blob blob, CancellationToken cancellationToken = default)
    {
        using (var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/{repository}/blobs/{blob.Digest}"), cancellationToken))
        {
            if (head.IsSuccessStatusCode)
            {
                return;
            }
        }

        using var start = await _http.PostAsync($"/v2/{repository}/blobs/uploads/", null, cancellationToken);
        await EnsureAsync(start, HttpStatusCode.Accepted, $"starting the upload of {blob.Digest} to {repository}", cancellationToken);
        var location = start.Headers.Location ?? throw new InvalidOperationException("upload start answered without Location");
        var absolute = location.IsAbsoluteUri ? location : new Uri(_http.BaseAddress!, location);
        var separator = absolute.Query.Length > 0 ? "&" : "?";
        using var content = new ByteArrayContent(blob.Content);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var put = await _http.PutAsync(new Uri(absolute + separator + "digest=" + Uri.EscapeDataString(blob.Digest)), content, cancellationToken);
        await EnsureAsync(put, HttpStatusCode.Created, $"uploading {blob.Digest} ({blob.Size} bytes) to {repository}", cancellationToken);
    }

    public async Task PutManifestAsync(string repository, string reference, Blob manifest, CancellationToken cancellationToken = default)
    {
        using var content = new ByteArrayContent(manifest.Content);
        content.Headers.ContentType = new MediaTypeHeaderValue(manifest.MediaType);
        using var put = await _http.PutAsync($"/v2/{repository}/manifests/{reference}", content, cancellationToken);
        await EnsureAsync(put, HttpStatusCode.Created, $"putting manifest {repository}:{reference} ({manifest.MediaType})", cancellationToken);
    }

    public void Dispose() => _http.Dispose();

    private static async Task EnsureAsync(HttpResponseMessage response, HttpStatusCode expected, string what, CancellationToken cancellationToken)
    {
        if (response.StatusCode != expected)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new InvalidOperationException($"{what}: registry answered {(int)response.StatusCode} {response.ReasonPhrase}: {body}");
        }
    }
}
