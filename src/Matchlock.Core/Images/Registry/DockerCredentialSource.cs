using System.Text;
using System.Text.Json;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// Credentials the way a Docker user already has them: <c>MATCHLOCK_REGISTRY_USERNAME</c> and
/// <c>MATCHLOCK_REGISTRY_PASSWORD</c> first (for whatever registry is pulled from, handy in CI), then
/// Docker's client config (<c>$DOCKER_CONFIG/config.json</c>, else <c>~/.docker/config.json</c>):
/// a <c>credHelpers</c> entry for the registry, else <c>credsStore</c>, else the <c>auths</c> entry.
/// Docker writes <c>auths</c> keys in several spellings (<c>host</c>, <c>host:port</c>,
/// <c>https://host</c>, <c>https://host/v2/</c>) and Docker Hub's as <c>https://index.docker.io/v1/</c>;
/// all are matched by host[:port].
/// </summary>
public sealed class DockerCredentialSource : IRegistryCredentialSource
{
    public const string UsernameVariable = "MATCHLOCK_REGISTRY_USERNAME";
    public const string PasswordVariable = "MATCHLOCK_REGISTRY_PASSWORD";

    /// <summary>Docker Hub's key in Docker's config and the server URL its credential helpers expect.</summary>
    internal const string DockerHubServerUrl = "https://index.docker.io/v1/";

    private static readonly string[] DockerHubHosts = ["index.docker.io", "docker.io", "registry-1.docker.io"];

    private readonly Func<string, string?> _environment;
    private readonly CredentialHelper _helper;

    /// <param name="environment">Reads an environment variable; tests pass a dictionary to stay hermetic.</param>
    internal DockerCredentialSource(Func<string, string?> environment)
    {
        _environment = environment;
        _helper = new CredentialHelper(environment);
    }

    /// <summary>Reads the process environment (and so the real Docker config) at each lookup.</summary>
    public static DockerCredentialSource FromEnvironment() => new(Environment.GetEnvironmentVariable);

    public async Task<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registry);
        if (_environment(UsernameVariable) is { Length: > 0 } user && _environment(PasswordVariable) is { } password)
        {
            return RegistryCredential.FromPassword(user, password, $"{UsernameVariable}/{PasswordVariable}");
        }

        var configPath = ConfigPath();
        if (configPath is null || !File.Exists(configPath))
        {
            return null;
        }

        var config = await ReadConfigAsync(configPath, cancellationToken);
        var host = registry.ToLowerInvariant();
        var isHub = host == ImageReference.DefaultRegistry;
        var serverUrl = isHub ? DockerHubServerUrl : host;

        var helper = FindByHost(config.CredHelpers, host, isHub) is { } helperEntry
            ? (Name: helperEntry.Value, Origin: $"credHelpers in {configPath}")
            : config.CredsStore is { Length: > 0 } store ? (Name: store, Origin: $"credsStore in {configPath}") : default;
        if (helper.Name is not null)
        {
            var fromHelper = await _helper.GetAsync(helper.Name, serverUrl, helper.Origin, cancellationToken);
            if (fromHelper is not null)
            {
                return fromHelper;
            }
        }

        return FindByHost(config.Auths, host, isHub) is { Value: { } auth } entry
            ? FromAuthEntry(auth, $"{configPath} auths[\"{entry.Key}\"]")
            : null;
    }

    private string? ConfigPath()
    {
        if (_environment("DOCKER_CONFIG") is { Length: > 0 } dir)
        {
            return Path.Combine(dir, "config.json");
        }

        var home = _environment("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return home.Length == 0 ? null : Path.Combine(home, ".docker", "config.json");
    }

    private static async Task<DockerConfigDto> ReadConfigAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = File.OpenRead(path);
            return await JsonSerializer.DeserializeAsync(stream, RegistryJsonContext.Default.DockerConfigDto, cancellationToken)
                ?? new DockerConfigDto();
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new RegistryException(
                RegistryErrorKind.Credentials, $"cannot read registry credentials from {path}: {e.Message}; fix or remove the file", e);
        }
    }

    /// <summary>The entry whose key names <paramref name="host"/> in any of Docker's spellings; the canonical key wins.</summary>
    private static KeyValuePair<string, T>? FindByHost<T>(Dictionary<string, T>? entries, string host, bool isHub)
    {
        if (entries is null)
        {
            return null;
        }

        if (isHub && entries.TryGetValue(DockerHubServerUrl, out var hub))
        {
            return new KeyValuePair<string, T>(DockerHubServerUrl, hub);
        }

        foreach (var entry in entries)
        {
            var key = KeyHost(entry.Key);
            if (isHub ? DockerHubHosts.Contains(key) : key == host)
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary><c>https://Host:5000/v2/</c> → <c>host:5000</c>.</summary>
    internal static string KeyHost(string key)
    {
        var rest = key.Trim();
        foreach (var scheme in (ReadOnlySpan<string>)["https://", "http://"])
        {
            if (rest.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            {
                rest = rest[scheme.Length..];
                break;
            }
        }

        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return (slash >= 0 ? rest[..slash] : rest).ToLowerInvariant();
    }

    private static RegistryCredential? FromAuthEntry(DockerAuthDto auth, string source)
    {
        if (auth.IdentityToken is { Length: > 0 } identityToken)
        {
            return RegistryCredential.FromIdentityToken(identityToken, auth.Username, source);
        }

        if (auth.Auth is { Length: > 0 } encoded)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            }
            catch (FormatException e)
            {
                throw new RegistryException(RegistryErrorKind.Credentials, $"{source}: \"auth\" is not base64; run `docker login` again", e);
            }

            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon > 0
                ? RegistryCredential.FromPassword(decoded[..colon], decoded[(colon + 1)..], source)
                : throw new RegistryException(RegistryErrorKind.Credentials, $"{source}: \"auth\" is not USER:PASSWORD; run `docker login` again");
        }

        return auth.Username is { Length: > 0 } user && auth.Password is { } password
            ? RegistryCredential.FromPassword(user, password, source)
            : null;
    }
}
