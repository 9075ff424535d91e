namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Credentials: an htpasswd registry refuses anonymous pulls with a message about auth and accepts
/// MATCHLOCK_REGISTRY_USERNAME/PASSWORD or a DOCKER_CONFIG config.json; the Bearer token flow
/// (through the fault proxy's token endpoint) works, and credentials never follow a redirect to
/// blob storage.
/// </summary>
public sealed class PullAuthTests(AuthRegistryFixture fixture) : IClassFixture<AuthRegistryFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Dictionary<string, string> EnvCredentials(RegistryCredentials c) => new(StringComparer.Ordinal)
    {
        ["MATCHLOCK_REGISTRY_USERNAME"] = c.Username,
        ["MATCHLOCK_REGISTRY_PASSWORD"] = c.Password,
    };

    private static PullHome NewHome()
    {
        RegistryPrerequisites.EnsureCli();
        return new PullHome();
    }

    [Fact]
    public async Task Without_credentials_the_pull_fails_mentioning_auth()
    {
        await using var home = NewHome();
        var before = await home.SnapshotAsync();
        var name = fixture.Ref("busybox:1");
        PullAssert.Failed(await home.RunAsync(["pull", name]), name, "auth");
        await home.AssertUnchangedAsync(before);
    }

    [Fact]
    public async Task A_wrong_password_fails_mentioning_auth_and_never_prints_the_password()
    {
        await using var home = NewHome();
        var name = fixture.Ref("busybox:1");
        var wrong = new RegistryCredentials(AuthRegistryFixture.User.Username, "not-the-password-xyz");
        var r = await home.RunAsync(["pull", name], EnvCredentials(wrong));
        PullAssert.Failed(r, name, "auth");
        Assert.DoesNotContain(wrong.Password, r.Stderr + r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Environment_credentials_are_used()
    {
        await using var home = NewHome();
        var name = fixture.Ref("busybox:1");
        PullAssert.Pulled(await home.RunAsync(["pull", name], EnvCredentials(AuthRegistryFixture.User)), name, TestImageCatalog.Gzip.Digest);
        home.AssertBlobsAre(TestImageCatalog.Gzip.AllContent());
    }

    [Fact]
    public async Task Docker_config_credentials_are_used()
    {
        await using var home = NewHome();
        var name = fixture.Ref("busybox:1");
        var dockerConfig = home.WriteDockerConfig(fixture.Registry.Host, AuthRegistryFixture.User);
        var r = await home.RunAsync(["pull", name], new Dictionary<string, string> { ["DOCKER_CONFIG"] = dockerConfig });
        PullAssert.Pulled(r, name, TestImageCatalog.Gzip.Digest);
    }

    [Fact]
    public async Task The_bearer_token_flow_fetches_a_token_for_the_repository_scope()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry,
            new FaultProxyMode { RequireBearer = true, TokenCredentials = AuthRegistryFixture.User }, Ct);
        var name = proxy.Host + "/busybox:1";
        var r = await home.RunAsync(["pull", name], EnvCredentials(AuthRegistryFixture.User));
        PullAssert.Pulled(r, name, TestImageCatalog.Gzip.Digest);
        Assert.True(proxy.TokenRequests >= 1, "no token was requested");
        Assert.Contains(proxy.TokenScopes, s => s.Contains("repository:busybox:pull", StringComparison.Ordinal));
        home.AssertBlobsAre(TestImageCatalog.Gzip.AllContent());
    }

    [Fact]
    public async Task Anonymous_bearer_tokens_work_without_credentials()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { RequireBearer = true }, Ct);
        var name = proxy.Host + "/zstd:1";
        PullAssert.Pulled(await home.RunAsync(["pull", name]), name, TestImageCatalog.Zstd.Digest);
        Assert.True(proxy.TokenRequests >= 1);
    }

    [Fact]
    public async Task Blob_redirects_are_followed_without_sending_credentials_to_storage()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry,
            new FaultProxyMode { RequireBearer = true, TokenCredentials = AuthRegistryFixture.User, RedirectBlobs = true }, Ct);
        var name = proxy.Host + "/busybox:1";
        var r = await home.RunAsync(["pull", name], EnvCredentials(AuthRegistryFixture.User));
        PullAssert.Pulled(r, name, TestImageCatalog.Gzip.Digest);
        Assert.True(proxy.StorageRequests >= TestImageCatalog.Gzip.Layers.Count, $"storage saw {proxy.StorageRequests} requests");
        Assert.Equal(0, proxy.StorageAuthorizationSeen);
        home.AssertBlobsAre(TestImageCatalog.Gzip.AllContent());
    }
}
