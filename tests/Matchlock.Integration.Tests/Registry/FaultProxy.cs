using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// A Kestrel reverse proxy on 127.0.0.1 in front of a <see cref="LocalRegistry"/> that injects
/// the faults of <see cref="FaultProxyMode"/>: Bearer token auth (distribution's token spec), blob
/// redirects to a storage endpoint, truncated and stalled blob bodies, blanket 403/500. It counts
/// every request by method and path so tests can assert what a client fetched.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private const int CopyBufferSize = 16 * 1024;

    private readonly LocalRegistry _registry;
    private readonly WebApplication _app;
    private readonly HttpClient _backend;
    private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _tokenScopes = new();
    private volatile FaultProxyMode _mode;
    private TaskCompletionSource _stalled = NewSignal();
    private TaskCompletionSource _release = NewSignal();
    private int _tokenRequests;
    private int _storageRequests;
    private int _storageAuthorizationSeen;

    private FaultProxy(LocalRegistry registry, FaultProxyMode mode, WebApplication app)
    {
        _registry = registry;
        _mode = mode;
        _app = app;
        _backend = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
        {
            BaseAddress = registry.Url,
            Timeout = Timeout.InfiniteTimeSpan, // a stalled body must not be cut by us
        };
    }

    /// <summary>127.0.0.1:PORT, as it appears in an image reference.</summary>
    public string Host { get; private set; } = "";

    public Uri Url => new("http://" + Host);

    public FaultProxyMode Mode
    {
        get => _mode;
        set => _mode = value;
    }

    /// <summary>Requests to <c>/token</c>.</summary>
    public int TokenRequests => Volatile.Read(ref _tokenRequests);

    /// <summary>The <c>scope</c> parameters the token endpoint was asked for.</summary>
    public IReadOnlyList<string> TokenScopes => [.. _tokenScopes];

    /// <summary>Requests to the redirect target <c>/_storage/…</c>.</summary>
    public int StorageRequests => Volatile.Read(ref _storageRequests);

    /// <summary>Storage requests that carried an Authorization header (a client leaking credentials across a redirect).</summary>
    public int StorageAuthorizationSeen => Volatile.Read(ref _storageAuthorizationSeen);

    /// <summary>Completes when a blob body has been stalled (<see cref="FaultProxyMode.StallBlobsAfter"/>).</summary>
    public Task Stalled => Volatile.Read(ref _stalled).Task;

    public static async Task<FaultProxy> StartAsync(LocalRegistry registry, FaultProxyMode? mode = null, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var proxy = new FaultProxy(registry, mode ?? FaultProxyMode.PassThrough, app);
        app.Run(proxy.HandleAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        proxy.Host = "127.0.0.1:" + new Uri(address).Port.ToString(CultureInfo.InvariantCulture);
        return proxy;
    }

    /// <summary>How many <paramref name="method"/> requests reached <paramref name="path"/> (exact, without query).</summary>
    public int Requests(string method, string path) => _requests.TryGetValue(method + " " + path, out var n) ? n : 0;

    /// <summary>Blob GETs (through the registry API, not the storage redirect target), optionally of one digest.</summary>
    public int BlobGets(string? digest = null) =>
        _requests.Where(kv => kv.Key.StartsWith("GET /v2/", StringComparison.Ordinal) && BlobRoute(kv.Key["GET ".Length..]) is { } b
                              && (digest is null || b.Digest == digest)).Sum(kv => kv.Value);

    /// <summary>Every counted request, "METHOD /path" → count (for failure messages).</summary>
    public IReadOnlyDictionary<string, int> AllRequests => new Dictionary<string, int>(_requests, StringComparer.Ordinal);

    public void ResetCounters()
    {
        _requests.Clear();
        _tokenScopes.Clear();
        Interlocked.Exchange(ref _tokenRequests, 0);
        Interlocked.Exchange(ref _storageRequests, 0);
        Interlocked.Exchange(ref _storageAuthorizationSeen, 0);
    }

    /// <summary>Lets every stalled body continue; later stalls wait again.</summary>
    public void ReleaseStalls()
    {
        var release = Interlocked.Exchange(ref _release, NewSignal());
        Interlocked.Exchange(ref _stalled, NewSignal());
        release.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        _release.TrySetResult();
        await _app.StopAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await _app.DisposeAsync();
        _backend.Dispose();
    }

    public override string ToString() => $"FaultProxy {Host} -> {_registry.Host} ({_mode})";

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary><c>/v2/&lt;repo&gt;/blobs/&lt;digest&gt;</c> → (repo, digest); null for anything else (uploads included).</summary>
    private static (string Repository, string Digest)? BlobRoute(string path)
    {
        if (!path.StartsWith("/v2/", StringComparison.Ordinal))
        {
            return null;
        }

        var i = path.LastIndexOf("/blobs/", StringComparison.Ordinal);
        if (i <= "/v2".Length)
        {
            return null;
        }

        var digest = path[(i + "/blobs/".Length)..];
        return digest.StartsWith("sha256:", StringComparison.Ordinal) && !digest.Contains('/', StringComparison.Ordinal)
            ? (path["/v2/".Length..i], digest)
            : null;
    }

    /// <summary>The repository a <c>/v2/REPO/{manifests,blobs,tags}/…</c> path names, or null (the <c>/v2/</c> ping).</summary>
    private static string? RepositoryOf(string path)
    {
        foreach (var kind in new[] { "/manifests/", "/blobs/", "/tags/" })
        {
            var i = path.LastIndexOf(kind, StringComparison.Ordinal);
            if (i > "/v2".Length)
            {
                return path["/v2/".Length..i];
            }
        }

        return null;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var mode = _mode;
        var path = context.Request.Path.Value ?? "/";
        _requests.AddOrUpdate(context.Request.Method + " " + path, 1, (_, n) => n + 1);

        if (path == "/token")
        {
            await TokenAsync(context, mode);
            return;
        }

        if (path.StartsWith("/_storage/", StringComparison.Ordinal))
        {
            await StorageAsync(context, mode, path["/_storage/".Length..]);
            return;
        }

        if (mode.FailAllWith is { } status)
        {
            await ErrorAsync(context, status, status == 403 ? "DENIED" : "UNKNOWN", $"fault proxy answers {status} to everything");
            return;
        }

        if (mode.RequireBearer && !HasValidToken(context))
        {
            var repository = RepositoryOf(path);
            var scope = repository is null ? "" : $",scope=\"repository:{repository}:pull\"";
            context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{Url}token\",service=\"test\"{scope}";
            await ErrorAsync(context, 401, "UNAUTHORIZED", "authentication required");
            return;
        }

        var blob = BlobRoute(path);
        if (blob is { } b && HttpMethods.IsGet(context.Request.Method) && mode.RedirectBlobs)
        {
            context.Response.StatusCode = (int)HttpStatusCode.TemporaryRedirect;
            context.Response.Headers.Location = $"{Url}_storage/{b.Repository}/{b.Digest}?X-Signature=test";
            return;
        }

        await ForwardAsync(context, mode, isBlobBody: blob is not null && HttpMethods.IsGet(context.Request.Method));
    }

    private bool HasValidToken(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && _tokens.ContainsKey(header["Bearer ".Length..].Trim());
    }

    private async Task TokenAsync(HttpContext context, FaultProxyMode mode)
    {
        Interlocked.Increment(ref _tokenRequests);
        foreach (var scope in context.Request.Query["scope"])
        {
            _tokenScopes.Enqueue(scope ?? "");
        }

        if (mode.TokenCredentials is { } expected
            && context.Request.Headers.Authorization.ToString() != "Basic " + expected.BasicParameter)
        {
            await ErrorAsync(context, 401, "UNAUTHORIZED", "token endpoint: bad or missing credentials");
            return;
        }

        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _tokens[token] = 0;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = 300,
            ["issued_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        }));
    }

    /// <summary>The redirect target, like a pre-signed S3 URL: it must not receive the registry's credentials.</summary>
    private async Task StorageAsync(HttpContext context, FaultProxyMode mode, string rest)
    {
        Interlocked.Increment(ref _storageRequests);
        if (context.Request.Headers.ContainsKey("Authorization"))
        {
            // S3 answers 400 "Only one auth mechanism allowed" in this case.
            Interlocked.Increment(ref _storageAuthorizationSeen);
            await ErrorAsync(context, 400, "INVALID_ARGUMENT", "storage got an Authorization header (credentials leaked across the redirect)");
            return;
        }

        var slash = rest.LastIndexOf('/');
        if (slash <= 0)
        {
            await ErrorAsync(context, 404, "NOT_FOUND", "no such storage object");
            return;
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{rest[..slash]}/blobs/{rest[(slash + 1)..]}");
        await SendUpstreamAsync(context, request, mode, isBlobBody: true);
    }

    private async Task ForwardAsync(HttpContext context, FaultProxyMode mode, bool isBlobBody)
    {
        using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), context.Request.Path + context.Request.QueryString);
        foreach (var name in new[] { "Accept", "Range" })
        {
            if (context.Request.Headers.TryGetValue(name, out var values))
            {
                request.Headers.TryAddWithoutValidation(name, (IEnumerable<string>)values!);
            }
        }

        // In bearer mode the client's token is ours, not the registry's: the proxy authenticates itself.
        if (!mode.RequireBearer && context.Request.Headers.TryGetValue("Authorization", out var authorization))
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization.ToString());
        }

        if (context.Request.ContentLength > 0 || context.Request.Headers.ContainsKey("Transfer-Encoding"))
        {
            request.Content = new StreamContent(context.Request.Body);
            if (context.Request.ContentType is { } type)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
            }
        }

        await SendUpstreamAsync(context, request, mode, isBlobBody);
    }

    private async Task SendUpstreamAsync(HttpContext context, HttpRequestMessage request, FaultProxyMode mode, bool isBlobBody)
    {
        if (request.Headers.Authorization is null && (mode.RequireBearer || isBlobBody) && _registry.Credentials is { } credentials)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Basic " + credentials.BasicParameter);
        }

        using var response = await _backend.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
        {
            if (name is "Transfer-Encoding" or "Connection" or "Keep-Alive")
            {
                continue;
            }

            var rewritten = name == "Location"
                ? values.Select(v => v.Replace(_registry.Url.ToString().TrimEnd('/'), Url.ToString().TrimEnd('/'), StringComparison.Ordinal))
                : values;
            context.Response.Headers[name] = rewritten.ToArray();
        }

        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
        if (!isBlobBody || !response.IsSuccessStatusCode)
        {
            await body.CopyToAsync(context.Response.Body, context.RequestAborted);
            return;
        }

        await CopyBlobAsync(context, body, mode);
    }

    private async Task CopyBlobAsync(HttpContext context, Stream body, FaultProxyMode mode)
    {
        var buffer = new byte[CopyBufferSize];
        long sent = 0;
        var stalled = false;
        while (true)
        {
            var limit = buffer.Length;
            if (mode.TruncateBlobsAfter is { } cut)
            {
                limit = (int)Math.Min(limit, Math.Max(0, cut - sent));
            }

            if (mode.StallBlobsAfter is { } stallAt && !stalled)
            {
                if (sent >= stallAt)
                {
                    // Make sure the client really holds the first bytes, then hang until released.
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    stalled = true;
                    var release = Volatile.Read(ref _release).Task;
                    Volatile.Read(ref _stalled).TrySetResult();
                    await release.WaitAsync(context.RequestAborted);
                    continue;
                }

                limit = (int)Math.Min(limit, stallAt - sent);
            }

            if (limit == 0)
            {
                // Truncation point: the client has fewer bytes than Content-Length promised. The
                // abort resets the connection, and a reset can discard bytes the client has not
                // read yet, so give it a moment to take them first.
                await context.Response.Body.FlushAsync(context.RequestAborted);
                await Task.Delay(100, context.RequestAborted);
                context.Abort();
                return;
            }

            var n = await body.ReadAsync(buffer.AsMemory(0, limit), context.RequestAborted);
            if (n == 0)
            {
                return;
            }

            await context.Response.Body.WriteAsync(buffer.AsMemory(0, n), context.RequestAborted);
            sent += n;
        }
    }

    private static async Task ErrorAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var json = JsonSerializer.Serialize(new { errors = new[] { new { code, message } } });
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(json), context.RequestAborted);
    }
}
