using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// Pulls manifests and blobs from an OCI distribution-spec registry (Docker Hub, ghcr.io, a local
/// <c>registry:2</c>, …). One instance holds one connection pool and caches, for its lifetime, the
/// URL scheme that worked for each insecure registry and the auth token for each repository; share
/// it across a pull, dispose it after.
/// </summary>
/// <remarks>
/// What a request goes through (<see cref="GetAsync"/>):
/// <list type="number">
/// <item>scheme: HTTPS, except that loopback and insecure registries fall back to plain HTTP when
/// HTTPS fails at the TLS or connection level (Docker's behaviour);</item>
/// <item>auth: a 401 is answered per its <c>WWW-Authenticate</c> challenge (token or Basic), once;</item>
/// <item>redirects: followed by hand, because the Authorization header must reach the registry but
/// never the blob store it redirects to;</item>
/// <item>retries: connection failures, timeouts and 5xx, up to <see cref="RegistryClientOptions.MaxAttempts"/>; never 4xx;</item>
/// <item>status: anything but 2xx becomes a <see cref="RegistryException"/> naming the image and the fix.</item>
/// </list>
/// </remarks>
public sealed partial class RegistryClient : IDisposable
{
    private const int MaxRedirects = 10;

    private readonly RegistryClientOptions _options;
    private readonly HttpClient _http;
    private readonly Lazy<HttpClient> _insecureHttp;

    /// <summary>Registry API host → scheme that answered, so the HTTPS probe is paid once per host.</summary>
    private readonly ConcurrentDictionary<string, string> _schemes = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>(API host, repository) → Authorization that the registry accepted.</summary>
    private readonly ConcurrentDictionary<(string Host, string Repository), AuthenticationHeaderValue> _authorizations = new();

    public RegistryClient(RegistryClientOptions? options = null)
    {
        _options = options ?? new RegistryClientOptions();
        if (_options.MaxAttempts < 1)
        {
            throw new ArgumentException("MaxAttempts must be at least 1", nameof(options));
        }

        _http = CreateHttpClient(_options, verifyCertificates: true);
        _insecureHttp = new Lazy<HttpClient>(() => CreateHttpClient(_options, verifyCertificates: false));
    }

    public void Dispose()
    {
        _http.Dispose();
        if (_insecureHttp.IsValueCreated)
        {
            _insecureHttp.Value.Dispose();
        }
    }

    private static HttpClient CreateHttpClient(RegistryClientOptions options, bool verifyCertificates)
    {
        HttpClient client;
        if (options.HttpHandler is { } handler)
        {
            client = new HttpClient(handler, disposeHandler: false);
        }
        else
        {
            var sockets = new SocketsHttpHandler
            {
                // Redirects are followed in SendFollowingRedirectsAsync (see there); decompression
                // stays off because layer digests are over the bytes as served.
                AllowAutoRedirect = false,
                AutomaticDecompression = DecompressionMethods.None,
                UseCookies = false,
                ConnectTimeout = options.ConnectTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            };
            if (!verifyCertificates)
            {
                // Only for registries the user listed as insecure (or loopback): Docker's
                // --insecure-registry semantics. Content is still verified by digest.
#pragma warning disable CA5359 // Do not disable certificate validation: opted into per registry, see above.
                sockets.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
            }

            client = new HttpClient(sockets, disposeHandler: true);
        }

        // Blob bodies may stream for many minutes; per-request timeouts cover headers and small bodies.
        client.Timeout = Timeout.InfiniteTimeSpan;
        client.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", options.UserAgent);
        return client;
    }

    /// <summary>Loopback hosts, and hosts listed in <see cref="RegistryClientOptions.InsecureRegistries"/> (with or without the port).</summary>
    internal bool IsInsecure(string hostAndPort)
    {
        if (IsLoopback(hostAndPort))
        {
            return true;
        }

        var host = HostOf(hostAndPort);
        return _options.InsecureRegistries.Any(entry =>
            entry.Equals(hostAndPort, StringComparison.OrdinalIgnoreCase)
            || (entry.Equals(host, StringComparison.OrdinalIgnoreCase) && !HasPort(entry)));
    }

    /// <summary><c>localhost</c>, 127.0.0.0/8 or ::1, with any port.</summary>
    internal static bool IsLoopback(string hostAndPort)
    {
        var host = HostOf(hostAndPort);
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
    }

    /// <summary><c>host:5000</c> → <c>host</c>; <c>[::1]:5000</c> → <c>::1</c>.</summary>
    private static string HostOf(string hostAndPort)
    {
        if (hostAndPort.StartsWith('['))
        {
            var close = hostAndPort.IndexOf(']', StringComparison.Ordinal);
            return close > 0 ? hostAndPort[1..close] : hostAndPort;
        }

        var colon = hostAndPort.LastIndexOf(':');
        return colon > 0 && hostAndPort.IndexOf(':', StringComparison.Ordinal) == colon ? hostAndPort[..colon] : hostAndPort;
    }

    private static bool HasPort(string hostAndPort) => hostAndPort.StartsWith('[')
        ? hostAndPort.Contains("]:", StringComparison.Ordinal)
        : HostOf(hostAndPort).Length != hostAndPort.Length;

    private HttpClient ClientFor(bool insecure) => insecure ? _insecureHttp.Value : _http;

    private static string Name(ImageReference image) => image.DisplayName;
}
