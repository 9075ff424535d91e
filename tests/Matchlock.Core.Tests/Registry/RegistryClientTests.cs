using System.Net;
using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Registry;

/// <summary>Unit tier: the client against the in-memory <see cref="FakeRegistry"/>; no sockets.</summary>
public sealed class RegistryClientTests : IDisposable
{
    private static readonly byte[] LayerA = Encoding.UTF8.GetBytes("layer a bytes");
    private static readonly byte[] LayerB = Encoding.UTF8.GetBytes("layer b, a little longer");

    private readonly FakeRegistry _registry = new();
    private readonly FixedCredentials _credentials = new(null);

    public void Dispose() => _registry.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ImageReference Ref(string text) => ImageReference.Parse($"{FakeRegistry.Host}/{text}");

    private RegistryClient Client(IRegistryCredentialSource? credentials = null, IReadOnlyList<string>? insecure = null) => new(new RegistryClientOptions
    {
        HttpHandler = _registry,
        Credentials = credentials ?? _credentials,
        RetryDelay = TimeSpan.Zero,
        InsecureRegistries = insecure ?? [],
    });

    private static async Task<RegistryException> Fails(RegistryErrorKind kind, Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<RegistryException>(action);
        Assert.Equal(kind, e.Failure);
        return e;
    }

    [Fact]
    public async Task A_tag_resolves_to_a_verified_OCI_manifest_with_config_and_layers()
    {
        var (digest, _) = _registry.AddImage("app", "1.0", [LayerA, LayerB]);
        using var client = Client();

        var pulled = await client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct);

        Assert.Equal(digest, pulled.Digest);
        Assert.Equal(digest, pulled.RepoDigest);
        Assert.Null(pulled.IndexDigest);
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", pulled.MediaType);
        Assert.Equal(FakeRegistry.Digest(pulled.Bytes), pulled.Digest);
        Assert.Equal([FakeRegistry.Digest(LayerA), FakeRegistry.Digest(LayerB)], pulled.Layers.Select(l => l.Digest));
        Assert.Equal(LayerB.Length, pulled.Layers[1].Size);
        var config = await client.GetBlobAsync(Ref("app:1.0"), pulled.Config, Ct);
        Assert.Contains("\"architecture\":\"amd64\"", Encoding.UTF8.GetString(config), StringComparison.Ordinal);
        var accept = _registry.Requests[0].Accept!;
        Assert.Contains("application/vnd.oci.image.index.v1+json", accept, StringComparison.Ordinal);
        Assert.Contains("application/vnd.docker.distribution.manifest.v2+json", accept, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_digest_reference_is_fetched_by_digest()
    {
        var (digest, _) = _registry.AddImage("app", null, [LayerA]);
        using var client = Client();

        var pulled = await client.GetManifestAsync(Ref("app@" + digest), Platform.Default, Ct);

        Assert.Equal(digest, pulled.RepoDigest);
        Assert.EndsWith("/manifests/" + digest, _registry.Requests[0].Uri.AbsolutePath, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manifest_list_yields_the_platform_entry_and_records_the_list_digest()
    {
        var amd = _registry.AddImage("app", null, [LayerA], "amd64", docker: true);
        var arm = _registry.AddImage("app", null, [LayerB], "arm64", docker: true);
        var list = _registry.AddIndex("app", "multi", docker: true,
            (amd.Digest, amd.Size, "linux", "amd64", null), (arm.Digest, arm.Size, "linux", "arm64", null));
        using var client = Client();

        var pulled = await client.GetManifestAsync(Ref("app:multi"), Platform.Parse("linux/arm64/v8"), Ct);

        Assert.Equal(arm.Digest, pulled.Digest);
        Assert.Equal(list, pulled.IndexDigest);
        Assert.Equal(list, pulled.RepoDigest);
        Assert.Equal("application/vnd.docker.distribution.manifest.v2+json", pulled.MediaType);
        Assert.Equal(FakeRegistry.Digest(LayerB), Assert.Single(pulled.Layers).Digest);
        Assert.Equal("application/vnd.docker.container.image.v1+json", pulled.Config.MediaType);
    }

    [Fact]
    public async Task A_missing_platform_names_the_available_ones_without_attestations()
    {
        var arm = _registry.AddImage("app", null, [LayerA], "arm64");
        var armv7 = _registry.AddImage("app", null, [LayerB], "arm");
        _registry.AddIndex("app", "latest", docker: false,
            (arm.Digest, arm.Size, "linux", "arm64", null), (armv7.Digest, armv7.Size, "linux", "arm", "v7"),
            (arm.Digest, arm.Size, "unknown", "unknown", null));
        using var client = Client();

        var e = await Fails(RegistryErrorKind.PlatformNotFound, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Equal("registry.test/app:latest has no linux/amd64 image; it has: linux/arm64, linux/arm/v7; use --platform", e.Message);
    }

    [Fact]
    public async Task A_tag_whose_bytes_differ_from_Docker_Content_Digest_is_rejected()
    {
        _registry.AddImage("app", "1.0", [LayerA]);
        _registry.Fault = request =>
        {
            if (!request.RequestUri!.AbsolutePath.Contains("/manifests/", StringComparison.Ordinal))
            {
                return null;
            }

            var response = FakeRegistry.Json(HttpStatusCode.OK, """{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}""");
            response.Headers.TryAddWithoutValidation("Docker-Content-Digest", "sha256:" + new string('0', 64));
            return response;
        };
        using var client = Client();

        var e = await Fails(RegistryErrorKind.DigestMismatch, () => client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct));

        Assert.Contains("Docker-Content-Digest", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_digest_reference_served_other_bytes_is_rejected()
    {
        var (digest, _) = _registry.AddImage("app", null, [LayerA]);
        var other = _registry.AddImage("app", "other", [LayerB]);
        _registry.Fault = request => request.RequestUri!.AbsolutePath.EndsWith(digest, StringComparison.Ordinal)
            ? Redirected(request, "/v2/app/manifests/other")
            : null;
        using var client = Client();

        var e = await Fails(RegistryErrorKind.DigestMismatch, () => client.GetManifestAsync(Ref("app@" + digest), Platform.Default, Ct));

        Assert.Contains(other.Digest, e.Message, StringComparison.Ordinal);
    }

    private static HttpResponseMessage Redirected(HttpRequestMessage request, string path)
    {
        var response = new HttpResponseMessage(HttpStatusCode.Found);
        response.Headers.Location = new Uri(request.RequestUri!, path);
        return response;
    }

    [Theory]
    [InlineData("application/vnd.docker.distribution.manifest.v1+prettyjws", """{"schemaVersion":1,"name":"app","tag":"old"}""")]
    [InlineData("application/json", """{"schemaVersion":1,"name":"app","tag":"old","fsLayers":[]}""")]
    public async Task Schema_1_manifests_are_refused(string contentType, string body)
    {
        _registry.PutManifest("app", "old", Encoding.UTF8.GetBytes(body), contentType);
        using var client = Client();

        var e = await Fails(RegistryErrorKind.UnsupportedMediaType, () => client.GetManifestAsync(Ref("app:old"), Platform.Default, Ct));

        Assert.Contains("schema 1 manifests are not supported", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_manifest_over_4_MiB_is_refused_with_or_without_Content_Length(bool announced)
    {
        var huge = new byte[9_000_000];
        _registry.Fault = _ => new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = announced ? new ByteArrayContent(huge) : new UnknownLengthContent(huge),
        };
        using var client = Client();

        var e = await Fails(RegistryErrorKind.TooLarge, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Contains(announced ? "is too large: 9 MB, more than the 4 MiB limit" : "more than the 4 MiB limit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_tag_is_NotFound_with_the_registry_message_and_a_hint()
    {
        using var client = Client();

        var e = await Fails(RegistryErrorKind.NotFound, () => client.GetManifestAsync(Ref("app:nope"), Platform.Default, Ct));

        Assert.Equal(
            "registry.test/app:nope: manifest for tag nope not found on registry.test (MANIFEST_UNKNOWN: manifest unknown); check the name and tag",
            e.Message);
    }

    [Fact]
    public async Task Foreign_layers_are_refused()
    {
        _registry.AddImage("win", "1", [LayerA], layerMediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
        using var client = Client();

        var e = await Fails(RegistryErrorKind.UnsupportedMediaType, () => client.GetManifestAsync(Ref("win:1"), Platform.Default, Ct));

        Assert.Contains("non-distributable", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bearer_without_credentials_gets_an_anonymous_token_once_per_repository()
    {
        _registry.Auth = FakeRegistry.AuthMode.Bearer;
        _registry.AddImage("app", "1.0", [LayerA]);
        using var client = Client();

        var pulled = await client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct);
        using (var layer = await client.OpenBlobAsync(Ref("app:1.0"), pulled.Layers[0], Ct))
        {
            await layer.CopyToAsync(Stream.Null, Ct);
        }

        var token = Assert.Single(_registry.To(FakeRegistry.AuthHost));
        Assert.Null(token.Authorization);
        Assert.Equal("?service=registry.test&scope=repository%3Aapp%3Apull", token.Uri.Query);
        Assert.Equal("Bearer tok-1", _registry.To(FakeRegistry.Host).Last().Authorization);
    }

    [Fact]
    public async Task Bearer_with_credentials_sends_them_to_the_token_service_only()
    {
        _registry.Auth = FakeRegistry.AuthMode.Bearer;
        _registry.RequiredCredentials = ("alice", "s3cret");
        _registry.AddImage("app", "1.0", [LayerA]);
        using var client = Client(new FixedCredentials(RegistryCredential.FromPassword("alice", "s3cret", "test")));

        await client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct);

        Assert.Equal(FakeRegistry.BasicOf("alice", "s3cret"), Assert.Single(_registry.To(FakeRegistry.AuthHost)).Authorization);
        Assert.DoesNotContain(_registry.To(FakeRegistry.Host), r => r.Authorization?.StartsWith("Basic", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Rejected_credentials_at_the_token_service_are_Unauthorized_naming_their_source()
    {
        _registry.Auth = FakeRegistry.AuthMode.Bearer;
        _registry.RequiredCredentials = ("alice", "s3cret");
        using var client = Client(new FixedCredentials(RegistryCredential.FromPassword("alice", "wrong", "~/.docker/config.json")));

        var e = await Fails(RegistryErrorKind.Unauthorized, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Contains("alice from ~/.docker/config.json", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong", e.Message, StringComparison.Ordinal);
        Assert.Contains("docker login registry.test", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Basic_only_registries_get_the_credentials_directly()
    {
        _registry.Auth = FakeRegistry.AuthMode.Basic;
        _registry.RequiredCredentials = ("bob", "pw");
        _registry.AddImage("app", "1.0", [LayerA]);
        using var client = Client(new FixedCredentials(RegistryCredential.FromPassword("bob", "pw", "test")));

        await client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct);

        Assert.Equal(FakeRegistry.BasicOf("bob", "pw"), _registry.Requests[^1].Authorization);
        Assert.Empty(_registry.To(FakeRegistry.AuthHost));
    }

    [Fact]
    public async Task Basic_without_credentials_is_Unauthorized_with_the_login_hint()
    {
        _registry.Auth = FakeRegistry.AuthMode.Basic;
        using var client = Client();

        var e = await Fails(RegistryErrorKind.Unauthorized, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Contains("401 unauthorized", e.Message, StringComparison.Ordinal);
        Assert.Contains("run `docker login registry.test` or set MATCHLOCK_REGISTRY_USERNAME/MATCHLOCK_REGISTRY_PASSWORD", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Forbidden_is_Denied()
    {
        _registry.Fault = _ => FakeRegistry.Json(HttpStatusCode.Forbidden, """{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}""");
        using var client = Client();

        var e = await Fails(RegistryErrorKind.Denied, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Contains("DENIED: requested access to the resource is denied", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_errors_are_retried_a_bounded_number_of_times()
    {
        _registry.Fault = _ => new HttpResponseMessage(HttpStatusCode.InternalServerError);
        using var client = Client();

        var e = await Fails(RegistryErrorKind.Protocol, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Equal(3, _registry.Requests.Count);
        Assert.Contains("500 Internal Server Error", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_transient_server_error_is_retried_and_the_pull_succeeds()
    {
        _registry.AddImage("app", "1.0", [LayerA]);
        var failures = 1;
        _registry.Fault = _ => failures-- > 0 ? new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) : null;
        using var client = Client();

        await client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct);

        Assert.Equal(2, _registry.Requests.Count);
    }

    [Fact]
    public async Task Client_errors_are_not_retried()
    {
        using var client = Client();

        await Fails(RegistryErrorKind.NotFound, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Single(_registry.Requests);
    }

    [Fact]
    public async Task A_refused_connection_is_Unreachable_after_bounded_attempts()
    {
        _registry.Fault = _ => throw FakeRegistry.Refused();
        using var client = Client();

        var e = await Fails(RegistryErrorKind.Unreachable, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Equal(3, _registry.Requests.Count);
        Assert.Contains("registry.test/app:latest: cannot reach registry.test: connection refused", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Redirects_to_blob_storage_do_not_carry_the_registry_token()
    {
        _registry.Auth = FakeRegistry.AuthMode.Bearer;
        _registry.RedirectBlobs = true;
        _registry.AddImage("app", "1.0", [LayerA]);
        using var client = Client();

        var pulled = await client.GetManifestAsync(Ref("app:1.0"), Platform.Default, Ct);
        using var layer = await client.OpenBlobAsync(Ref("app:1.0"), pulled.Layers[0], Ct);
        using var copy = new MemoryStream();
        await layer.CopyToAsync(copy, Ct);

        Assert.Equal(LayerA, copy.ToArray());
        Assert.Equal("Bearer tok-1", _registry.To(FakeRegistry.Host).Last().Authorization);
        Assert.Null(Assert.Single(_registry.To(FakeRegistry.BlobHost)).Authorization);
    }

    [Fact]
    public async Task Loopback_registries_use_http_without_trying_https()
    {
        var insecure = ImageReference.Parse("localhost:5000/app:1.0");
        _registry.Fault = request =>
        {
            if (request.RequestUri!.Scheme == "https")
            {
                throw new HttpRequestException(HttpRequestError.SecureConnectionError, "The SSL connection could not be established");
            }

            var path = request.RequestUri.AbsolutePath;
            var bytes = Encoding.UTF8.GetBytes("""{"errors":[{"code":"MANIFEST_UNKNOWN","message":"nope"}]}""");
            return path.Contains("/manifests/", StringComparison.Ordinal)
                ? new HttpResponseMessage(HttpStatusCode.NotFound) { Content = new ByteArrayContent(bytes) }
                : null;
        };
        using var client = Client();

        await Fails(RegistryErrorKind.NotFound, () => client.GetManifestAsync(insecure, Platform.Default, Ct));
        await Fails(RegistryErrorKind.NotFound, () => client.GetManifestAsync(insecure, Platform.Default, Ct));

        Assert.Equal(["http", "http"], _registry.Requests.Select(r => r.Uri.Scheme));
    }

    [Fact]
    public async Task Secure_registries_never_fall_back_to_http()
    {
        _registry.Fault = _ => throw new HttpRequestException(HttpRequestError.SecureConnectionError, "certificate rejected");
        using var client = Client();

        var e = await Fails(RegistryErrorKind.Unreachable, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.All(_registry.Requests, r => Assert.Equal("https", r.Uri.Scheme));
        Assert.Contains("MATCHLOCK_INSECURE_REGISTRIES", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Listed_insecure_registries_fall_back_to_http_once_and_remember_it()
    {
        _registry.Fault = request => request.RequestUri!.Scheme == "https"
            ? throw new HttpRequestException(HttpRequestError.SecureConnectionError, "no TLS here")
            : FakeRegistry.Json(HttpStatusCode.NotFound, "{}");
        using var client = Client(insecure: [FakeRegistry.Host]);

        await Fails(RegistryErrorKind.NotFound, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));
        await Fails(RegistryErrorKind.NotFound, () => client.GetManifestAsync(Ref("app"), Platform.Default, Ct));

        Assert.Equal(["https", "http", "http"], _registry.Requests.Select(r => r.Uri.Scheme));
    }
}
