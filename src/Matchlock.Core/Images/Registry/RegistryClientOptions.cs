using System.Reflection;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// Settings of a <see cref="RegistryClient"/>; immutable once built (init-only), so a client never sees
/// them change under it. Defaults come from the environment, the way Docker's CLI behaves.
/// </summary>
public sealed class RegistryClientOptions
{
    /// <summary>Environment variable: comma-separated <c>host[:port]</c> registries that may use plain HTTP or unverified TLS.</summary>
    public const string InsecureRegistriesVariable = "MATCHLOCK_INSECURE_REGISTRIES";

    /// <summary>
    /// Registries (<c>host[:port]</c>) for which HTTPS is tried without certificate verification and
    /// plain HTTP is the fallback. Loopback registries are always treated this way. A host without a
    /// port here matches that host on any port.
    /// </summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = ParseList(Environment.GetEnvironmentVariable(InsecureRegistriesVariable));

    /// <summary>Where credentials come from; default: MATCHLOCK_REGISTRY_USERNAME/PASSWORD, then Docker's config.</summary>
    public IRegistryCredentialSource Credentials { get; init; } = DockerCredentialSource.FromEnvironment();

    /// <summary>
    /// Handler to send requests through instead of the client's own <see cref="SocketsHttpHandler"/>
    /// (tests use an in-memory registry). Not disposed by the client. Also used for insecure registries.
    /// </summary>
    public HttpMessageHandler? HttpHandler { get; init; }

    /// <summary>TCP (and TLS) connect timeout.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Time allowed until response headers arrive, and for small bodies (manifests, tokens) until they
    /// are read. Blob bodies have no overall timeout: a layer can take minutes.
    /// </summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts per request on connection failures and 5xx (never on 4xx); at least 1.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Delay before the second attempt; doubled for each further one.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Largest manifest or index accepted (the OCI distribution spec suggests registries accept at least 4 MiB).</summary>
    public long MaxManifestBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest config blob <see cref="RegistryClient.GetBlobAsync"/> reads into memory.</summary>
    public long MaxConfigBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>User-Agent header.</summary>
    public string UserAgent { get; init; } = "matchlock/" + Version;

    private static string Version =>
        typeof(RegistryClientOptions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";

    internal static IReadOnlyList<string> ParseList(string? value) =>
        string.IsNullOrWhiteSpace(value)
            ? []
            : [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => s.ToLowerInvariant())];
}
