using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Proves the registry tier's fixtures without the matchlock CLI: the local registry serves what
/// the pusher pushed (digests verified by an HttpClient), the htpasswd variant wants its
/// credentials, and the fault proxy's bearer, redirect, truncate, stall, fail and counting modes
/// behave as the pull tests assume.
/// </summary>
public sealed class FixtureSmokeTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HttpClient NewClient() =>
        new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task Every_pushed_tag_serves_its_manifest_and_blobs_by_digest()
    {
        RegistryPrerequisites.EnsureFixtures();
        using var http = NewClient();
        foreach (var (repoTag, image) in TestImageCatalog.Tags)
        {
            var colon = repoTag.LastIndexOf(':');
            var repository = repoTag[..colon];
            var manifest = await GetManifestAsync(http, fixture.Registry.Url, repository, repoTag[(colon + 1)..], image.MediaType);
            Assert.Equal(image.Digest, Digest(manifest));
            foreach (var child in image.Children)
            {
                Assert.Equal(child.Digest, Digest(await GetManifestAsync(http, fixture.Registry.Url, repository, child.Digest, child.MediaType)));
            }

            foreach (var blob in image.AllContent().Where(b => !b.MediaType.Contains("manifest", StringComparison.Ordinal) && !b.MediaType.Contains("index", StringComparison.Ordinal)))
            {
                var bytes = await http.GetByteArrayAsync(new Uri(fixture.Registry.Url, $"/v2/{repository}/blobs/{blob.Digest}"), Ct);
                if (image == TestImageCatalog.Tampered && blob == image.Layers[^1])
                {
                    Assert.Equal(blob.Size, bytes.Length);
                    Assert.NotEqual(blob.Digest, Digest(bytes)); // corrupted in storage, same length
                }
                else
                {
                    Assert.Equal(blob.Digest, Digest(bytes));
                }
            }
        }
    }

    [Fact]
    public void Test_layers_are_deterministic_and_the_diff_ids_match_every_compression()
    {
        RegistryPrerequisites.EnsureFixtures();
        Assert.Equal(TestImages.MarkerLayer("x"), TestImages.MarkerLayer("x"));
        var tar = TestImages.BusyboxLayer;
        Assert.Equal(tar, Decompress(TestImageCatalog.Zstd.Layers[0]));
        Assert.Equal(tar, Decompress(TestImageCatalog.Gzip.Layers[0]));
        Assert.Equal(tar, Decompress(TestImageCatalog.Uncompressed.Layers[0]));
        Assert.Equal(TestImageCatalog.Gzip.Layers[0].Digest, TestImageCatalog.SharedA.Layers[0].Digest);
        Assert.Equal(TestImageCatalog.SharedA.Layers[0].Digest, TestImageCatalog.SharedB.Layers[0].Digest);
        Assert.NotEqual(TestImageCatalog.SharedA.Layers[1].Digest, TestImageCatalog.SharedB.Layers[1].Digest);

        using var config = JsonDocument.Parse(TestImageCatalog.Zstd.Config!.Content);
        var diffIds = config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), diffIds[0]);
        Assert.Equal("amd64", config.RootElement.GetProperty("architecture").GetString());

        var entries = new Dictionary<string, TarEntry>(StringComparer.Ordinal);
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is { } entry)
        {
            entries[entry.Name] = entry;
        }

        Assert.Equal(TarEntryType.RegularFile, entries["bin/busybox"].EntryType);
        Assert.Equal("/bin/busybox", entries["bin/sh"].LinkName);
        Assert.Equal(LayerBuilder.Mode("1777"), entries["tmp/"].Mode);
        Assert.All(entries.Values, e => Assert.Equal(DateTimeOffset.UnixEpoch, e.ModificationTime));
    }

    [Fact]
    public async Task Htpasswd_registry_wants_basic_credentials()
    {
        RegistryPrerequisites.EnsureFixtures();
        await using var registry = await LocalRegistry.StartAsync(AuthRegistryFixture.User, Ct);
        using (var pusher = registry.CreatePusher())
        {
            await pusher.PushAsync("busybox", "1", TestImageCatalog.Gzip, Ct);
        }

        using var http = NewClient();
        using var anonymous = await http.GetAsync(new Uri(registry.Url, "/v2/busybox/manifests/1"), Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.StartsWith("Basic", anonymous.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", AuthRegistryFixture.User.BasicParameter);
        var manifest = await GetManifestAsync(http, registry.Url, "busybox", "1", MediaTypes.OciManifest);
        Assert.Equal(TestImageCatalog.Gzip.Digest, Digest(manifest));
    }

    [Fact]
    public async Task Registry_dispose_stops_the_process_and_removes_its_storage()
    {
        RegistryPrerequisites.EnsureFixtures();
        var registry = await LocalRegistry.StartAsync(cancellationToken: Ct);
        var root = registry.StorageRoot;
        var url = registry.Url;
        await registry.DisposeAsync();
        Assert.False(Directory.Exists(root));
        using var http = NewClient();
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri(url, "/v2/"), Ct));
    }

    [Fact]
    public async Task Bearer_mode_issues_tokens_for_the_requested_scope()
    {
        RegistryPrerequisites.EnsureFixtures();
        var user = new RegistryCredentials("bear", "er");
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { RequireBearer = true, TokenCredentials = user }, Ct);
        using var http = NewClient();
        using var challenge = await http.GetAsync(new Uri(proxy.Url, "/v2/busybox/manifests/1"), Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, challenge.StatusCode);
        var header = challenge.Headers.WwwAuthenticate.ToString();
        Assert.Equal($"Bearer realm=\"{proxy.Url}token\",service=\"test\",scope=\"repository:busybox:pull\"", header);

        var tokenUri = new Uri(proxy.Url, "/token?service=test&scope=repository:busybox:pull");
        using (var denied = await http.GetAsync(tokenUri, Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        }

        using var tokenRequest = new HttpRequestMessage(HttpMethod.Get, tokenUri);
        tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic", user.BasicParameter);
        using var tokenResponse = await http.SendAsync(tokenRequest, Ct);
        tokenResponse.EnsureSuccessStatusCode();
        using var token = JsonDocument.Parse(await tokenResponse.Content.ReadAsStringAsync(Ct));
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.RootElement.GetProperty("token").GetString());

        var manifest = await GetManifestAsync(http, proxy.Url, "busybox", "1", MediaTypes.OciManifest);
        Assert.Equal(TestImageCatalog.Gzip.Digest, Digest(manifest));
        Assert.Equal(2, proxy.TokenRequests);
        Assert.Contains("repository:busybox:pull", proxy.TokenScopes);
    }

    [Fact]
    public async Task Redirect_mode_serves_blobs_from_storage_and_records_leaked_credentials()
    {
        RegistryPrerequisites.EnsureFixtures();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { RedirectBlobs = true }, Ct);
        var layer = TestImageCatalog.Gzip.Layers[0];
        using var http = NewClient();
        using var redirect = await http.GetAsync(new Uri(proxy.Url, $"/v2/busybox/blobs/{layer.Digest}"), Ct);
        Assert.Equal(HttpStatusCode.TemporaryRedirect, redirect.StatusCode);
        var location = redirect.Headers.Location!;
        Assert.StartsWith(proxy.Url + "_storage/", location.ToString(), StringComparison.Ordinal);

        Assert.Equal(layer.Digest, Digest(await http.GetByteArrayAsync(location, Ct)));
        Assert.Equal(0, proxy.StorageAuthorizationSeen);

        using var leaking = new HttpRequestMessage(HttpMethod.Get, location);
        leaking.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "secret");
        using var rejected = await http.SendAsync(leaking, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        Assert.Equal(1, proxy.StorageAuthorizationSeen);
        Assert.Equal(2, proxy.StorageRequests);
        Assert.Equal(1, proxy.BlobGets(layer.Digest));
    }

    [Fact]
    public async Task Truncate_mode_aborts_a_blob_body_after_n_bytes()
    {
        RegistryPrerequisites.EnsureFixtures();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { TruncateBlobsAfter = 100_000 }, Ct);
        var layer = TestImageCatalog.Gzip.Layers[0];
        using var http = NewClient();

        // Small blobs (configs) pass untouched.
        var config = TestImageCatalog.Gzip.Config!;
        Assert.Equal(config.Digest, Digest(await http.GetByteArrayAsync(new Uri(proxy.Url, $"/v2/busybox/blobs/{config.Digest}"), Ct)));

        using var response = await http.GetAsync(new Uri(proxy.Url, $"/v2/busybox/blobs/{layer.Digest}"), HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(layer.Size, response.Content.Headers.ContentLength);
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        var received = 0L;
        var buffer = new byte[8192];
        var error = await Record.ExceptionAsync(async () =>
        {
            int n;
            while ((n = await body.ReadAsync(buffer, Ct)) > 0)
            {
                received += n;
            }
        });
        Assert.True(error is IOException or HttpRequestException, $"expected a broken body, got {error?.GetType().Name ?? "a clean end"} after {received} bytes");
        Assert.InRange(received, 1, 100_000); // a reset may drop the last unread bytes
    }

    [Fact]
    public async Task Stall_mode_holds_a_blob_body_until_released()
    {
        RegistryPrerequisites.EnsureFixtures();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { StallBlobsAfter = 65_536 }, Ct);
        var layer = TestImageCatalog.Gzip.Layers[0];
        using var http = NewClient();
        var fetch = http.GetByteArrayAsync(new Uri(proxy.Url, $"/v2/busybox/blobs/{layer.Digest}"), Ct);
        await proxy.Stalled.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await Task.Delay(300, Ct); // deliberate: a window in which the stalled fetch must NOT complete
        Assert.False(fetch.IsCompleted);

        proxy.ReleaseStalls();
        Assert.Equal(layer.Digest, Digest(await fetch.WaitAsync(TimeSpan.FromSeconds(10), Ct)));
    }

    [Theory]
    [InlineData(403)]
    [InlineData(500)]
    public async Task Fail_mode_answers_every_registry_request_with_the_status(int status)
    {
        RegistryPrerequisites.EnsureFixtures();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { FailAllWith = status }, Ct);
        using var http = NewClient();
        foreach (var path in new[] { "/v2/", "/v2/busybox/manifests/1", $"/v2/busybox/blobs/{TestImageCatalog.Gzip.Config!.Digest}" })
        {
            using var response = await http.GetAsync(new Uri(proxy.Url, path), Ct);
            Assert.Equal(status, (int)response.StatusCode);
        }
    }

    [Fact]
    public async Task Pass_through_counts_requests_per_path()
    {
        RegistryPrerequisites.EnsureFixtures();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, cancellationToken: Ct);
        using var http = NewClient();
        var image = TestImageCatalog.Multi;
        var index = await GetManifestAsync(http, proxy.Url, "multi", "1", image.MediaType);
        Assert.Equal(image.Digest, Digest(index));
        var layer = image.Children[0].Layers[0];
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(layer.Digest, Digest(await http.GetByteArrayAsync(new Uri(proxy.Url, $"/v2/multi/blobs/{layer.Digest}"), Ct)));
        }

        Assert.Equal(1, proxy.Requests("GET", "/v2/multi/manifests/1"));
        Assert.Equal(2, proxy.BlobGets(layer.Digest));
        Assert.Equal(2, proxy.BlobGets());
        proxy.ResetCounters();
        Assert.Equal(0, proxy.BlobGets());
    }

    private static async Task<byte[]> GetManifestAsync(HttpClient http, Uri registry, string repository, string reference, string mediaType)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(registry, $"/v2/{repository}/manifests/{reference}"));
        request.Headers.Accept.ParseAdd(mediaType);
        using var response = await http.SendAsync(request, Ct);
        Assert.True(response.IsSuccessStatusCode, $"GET manifest {repository}:{reference} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);
        Assert.Equal(Digest(bytes), response.Headers.GetValues("Docker-Content-Digest").Single());
        return bytes;
    }

    private static string Digest(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static byte[] Decompress(Blob layer)
    {
        if (layer.MediaType.EndsWith("+zstd", StringComparison.Ordinal))
        {
            using var d = new ZstdSharp.Decompressor();
            return d.Unwrap(layer.Content).ToArray();
        }

        if (layer.MediaType.EndsWith("gzip", StringComparison.Ordinal))
        {
            using var output = new MemoryStream();
            using (var gz = new GZipStream(new MemoryStream(layer.Content), CompressionMode.Decompress))
            {
                gz.CopyTo(output);
            }

            return output.ToArray();
        }

        Debug.Assert(layer.MediaType.EndsWith(".tar", StringComparison.Ordinal));
        return layer.Content;
    }
}
