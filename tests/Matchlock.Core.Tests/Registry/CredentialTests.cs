using System.Text;
using Matchlock.Core.Images.Registry;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Core.Tests.Registry;

/// <summary>DockerCredentialSource against a temporary DOCKER_CONFIG and a fake environment (hermetic: no real ~/.docker).</summary>
public sealed class CredentialTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Dictionary<string, string?> _env = new(StringComparer.Ordinal);

    public CredentialTests()
    {
        _env["DOCKER_CONFIG"] = _dir.Path;
        _env["PATH"] = _dir.Combine("bin");
        Directory.CreateDirectory(_dir.Combine("bin"));
    }

    public void Dispose() => _dir.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DockerCredentialSource Source => new(name => _env.GetValueOrDefault(name));

    private void Config(string json) => File.WriteAllText(_dir.Combine("config.json"), json);

    private static string AuthsConfig(string key, string auth) => "{\"auths\":{\"" + key + "\":{\"auth\":\"" + auth + "\"}}}";

    private static string Auth(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    [Theory]
    [InlineData("ghcr.io", "ghcr.io")]
    [InlineData("https://ghcr.io", "ghcr.io")]
    [InlineData("https://GHCR.io/v2/", "ghcr.io")]
    [InlineData("localhost:5000", "localhost:5000")]
    [InlineData("http://localhost:5000/v2/", "localhost:5000")]
    [InlineData("https://index.docker.io/v1/", "docker.io")]
    [InlineData("index.docker.io", "docker.io")]
    public async Task Auths_keys_in_any_of_Dockers_spellings_match_the_registry(string key, string registry)
    {
        Config(AuthsConfig(key, Auth("user", "pa:ss")));

        var credential = await Source.GetCredentialAsync(registry, Ct);

        Assert.NotNull(credential);
        Assert.Equal("user", credential.Username);
        Assert.Equal("pa:ss", credential.Password);
        Assert.DoesNotContain("pa:ss", credential.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Username_and_password_fields_and_identity_tokens_are_read()
    {
        Config("""{"auths":{"a.test":{"username":"u","password":"p"},"b.test":{"identitytoken":"refresh-me"}}}""");

        var a = await Source.GetCredentialAsync("a.test", Ct);
        var b = await Source.GetCredentialAsync("b.test", Ct);

        Assert.Equal(("u", "p"), (a!.Username, a.Password));
        Assert.Equal("refresh-me", b!.IdentityToken);
        Assert.Null(await Source.GetCredentialAsync("c.test", Ct));
    }

    [Fact]
    public async Task Environment_credentials_come_first()
    {
        Config(AuthsConfig("ghcr.io", Auth("config", "x")));
        _env[DockerCredentialSource.UsernameVariable] = "ci";
        _env[DockerCredentialSource.PasswordVariable] = "token";

        var credential = await Source.GetCredentialAsync("ghcr.io", Ct);

        Assert.Equal(("ci", "token"), (credential!.Username, credential.Password));
    }

    [Fact]
    public async Task No_config_means_anonymous()
    {
        Assert.Null(await Source.GetCredentialAsync("ghcr.io", Ct));
    }

    [Fact]
    public async Task CredHelpers_run_the_helper_with_the_server_URL_on_stdin()
    {
        var helper = _dir.Combine("bin", "docker-credential-fake");
        File.WriteAllText(helper, """
            #!/bin/sh
            read url
            [ "$1" = get ] || exit 2
            case "$url" in
              https://index.docker.io/v1/) echo '{"ServerURL":"hub","Username":"hubuser","Secret":"hubsecret"}' ;;
              ghcr.io) echo '{"ServerURL":"ghcr.io","Username":"<token>","Secret":"idtoken"}' ;;
              *) echo "credentials not found in native keychain"; exit 1 ;;
            esac
            """.Replace("\r", "", StringComparison.Ordinal));
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Config("""{"credsStore":"fake","credHelpers":{"ghcr.io":"fake"}}""");

        var hub = await Source.GetCredentialAsync("docker.io", Ct);
        var ghcr = await Source.GetCredentialAsync("ghcr.io", Ct);
        var other = await Source.GetCredentialAsync("quay.io", Ct);

        Assert.Equal(("hubuser", "hubsecret"), (hub!.Username, hub.Password));
        Assert.Equal("idtoken", ghcr!.IdentityToken);
        Assert.Null(other);
    }

    [Fact]
    public async Task A_missing_helper_is_a_clear_error_naming_it()
    {
        Config("""{"credsStore":"desktop"}""");

        var e = await Assert.ThrowsAsync<RegistryException>(() => Source.GetCredentialAsync("docker.io", Ct));

        Assert.Equal(RegistryErrorKind.Credentials, e.Failure);
        Assert.Contains("docker-credential-desktop", e.Message, StringComparison.Ordinal);
        Assert.Contains("credsStore", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_broken_config_is_a_clear_error_naming_the_file()
    {
        Config("{ not json");

        var e = await Assert.ThrowsAsync<RegistryException>(() => Source.GetCredentialAsync("docker.io", Ct));

        Assert.Contains(_dir.Combine("config.json"), e.Message, StringComparison.Ordinal);
    }
}
