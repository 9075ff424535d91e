using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace Matchlock.Core.Images.Registry;

public sealed partial class RegistryClient
{
    /// <summary>
    /// GETs <c>/v2/REPOSITORY/PATH</c> from the image's registry and returns the 2xx response (the
    /// caller owns it); every other outcome is a <see cref="RegistryException"/>. See the class remarks
    /// for the steps.
    /// </summary>
    /// <param name="what">What is fetched, for messages: <c>manifest for tag 3.20</c>, <c>blob sha256:…</c>.</param>
    private async Task<HttpResponseMessage> GetAsync(
        ImageReference image, string path, string what, string notFoundRemedy, IReadOnlyList<string>? accept, CancellationToken cancellationToken)
    {
        var host = image.RegistryHost;
        var insecure = IsInsecure(host) || IsInsecure(image.Registry);
        var known = _schemes.TryGetValue(host, out var remembered);
        // Loopback registries are nearly always plain HTTP (registry:2's default) and HTTP on
        // loopback cannot be intercepted, so they are tried over HTTP first: that spares every
        // pull the TLS library's start-up and a failing handshake. A TLS-only loopback registry
        // answers the first (anonymous) request with an error, and we switch to HTTPS.
        var loopbackFirst = !known && IsLoopback(host);
        var scheme = remembered ?? (loopbackFirst ? "http" : "https");
        var mayFallBack = insecure && !known;
        for (var attempt = 1; ; attempt++)
        {
            var uri = new Uri($"{scheme}://{host}/v2/{image.Repository}/{path}");
            HttpResponseMessage response;
            try
            {
                response = await SendAuthenticatedAsync(image, uri, accept, insecure, cancellationToken);
            }
            catch (HttpRequestException e) when (mayFallBack && loopbackFirst && scheme == "http" && IsFallbackError(e))
            {
                scheme = "https";
                mayFallBack = false;
                attempt--;
                continue;
            }
            catch (HttpRequestException e) when (mayFallBack && scheme == "https" && IsFallbackError(e))
            {
                // Like Docker for insecure registries: HTTPS first, plain HTTP if that fails below
                // HTTP. Not counted as an attempt: it is a different endpoint, not a retry.
                scheme = "http";
                mayFallBack = false;
                attempt--;
                continue;
            }
            catch (Exception e) when (IsTransient(e, cancellationToken))
            {
                if (attempt >= _options.MaxAttempts)
                {
                    throw Unreachable(image, uri.Authority, e, attempt);
                }

                await BackOffAsync(attempt, cancellationToken);
                continue;
            }
            catch (HttpRequestException e)
            {
                // Not worth retrying (a certificate will not change in a second), still unreachable.
                throw Unreachable(image, uri.Authority, e, attempt);
            }

            if (mayFallBack && loopbackFirst && scheme == "http" && response.StatusCode == HttpStatusCode.BadRequest
                && await SaysHttpsAsync(response, cancellationToken))
            {
                // "Client sent an HTTP request to an HTTPS server." (Go's TLS servers)
                response.Dispose();
                scheme = "https";
                mayFallBack = false;
                attempt--;
                continue;
            }

            _schemes.TryAdd(host, scheme);
            if ((int)response.StatusCode >= 500 && attempt < _options.MaxAttempts)
            {
                response.Dispose();
                await BackOffAsync(attempt, cancellationToken);
                continue;
            }

            if (response.IsSuccessStatusCode)
            {
                return response;
            }

            using (response)
            {
                throw await StatusErrorAsync(image, uri.Authority, what, notFoundRemedy, response, cancellationToken);
            }
        }
    }

    /// <summary>Sends with the cached Authorization for the repository; on 401 authenticates per the challenge and sends once more.</summary>
    private async Task<HttpResponseMessage> SendAuthenticatedAsync(
        ImageReference image, Uri uri, IReadOnlyList<string>? accept, bool insecure, CancellationToken cancellationToken)
    {
        var key = (image.RegistryHost, image.Repository);
        _authorizations.TryGetValue(key, out var authorization);
        var response = await SendFollowingRedirectsAsync(uri, accept, authorization, insecure, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        // First contact, or the cached token expired: either way the challenge says what to do.
        var challenge = AuthChallenge.FromResponse(response);
        response.Dispose();
        _authorizations.TryRemove(key, out _);
        var (header, credential) = await AuthenticateAsync(image, challenge, cancellationToken);
        response = await SendFollowingRedirectsAsync(uri, accept, header, insecure, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Dispose();
            throw UnauthorizedError(image, credential);
        }

        _authorizations[key] = header;
        return response;
    }

    /// <summary>
    /// Sends a GET and follows redirects itself. A redirect target is expected to carry its own
    /// authorisation (blob stores hand out signed URLs; S3 rejects or logs foreign credentials), so
    /// our Authorization goes only to the URL we were asked for — and to a redirect target on the
    /// registry's own origin, but only if that target answers 401 without it.
    /// </summary>
    private async Task<HttpResponseMessage> SendFollowingRedirectsAsync(
        Uri uri, IReadOnlyList<string>? accept, AuthenticationHeaderValue? authorization, bool insecure, CancellationToken cancellationToken)
    {
        var origin = uri;
        var withAuthorization = authorization is not null;
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            foreach (var type in accept ?? [])
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
            }

            var sameOrigin = Uri.Compare(uri, origin, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
            if (withAuthorization && sameOrigin)
            {
                request.Headers.Authorization = authorization;
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.ResponseTimeout);
            var response = await ClientFor(insecure).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.StatusCode == HttpStatusCode.Unauthorized && hop > 0 && sameOrigin && !withAuthorization && authorization is not null)
            {
                // A redirect within the registry that does want our credentials after all.
                response.Dispose();
                withAuthorization = true;
                hop--;
                continue;
            }

            withAuthorization = false; // never past the first hop unless asked for as above
            if ((int)response.StatusCode is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
            {
                response.Dispose();
                if (hop >= MaxRedirects)
                {
                    throw new HttpRequestException(HttpRequestError.Unknown, $"more than {MaxRedirects} redirects, last to {location}");
                }

                uri = location.IsAbsoluteUri ? location : new Uri(uri, location);
                continue;
            }

            return response;
        }
    }

    /// <summary>Whether a 400 answer to plain HTTP comes from a TLS server ("Client sent an HTTP request to an HTTPS server.").</summary>
    private static async Task<bool> SaysHttpsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return (await response.Content.ReadAsStringAsync(cancellationToken)).Contains("HTTPS", StringComparison.OrdinalIgnoreCase);
        }
        catch (HttpRequestException)
        {
            return true; // Cut off mid-answer, as TLS servers do: HTTPS will tell.
        }
    }

    /// <summary>Errors after which plain HTTP may work: the TLS handshake failed, the port is closed, or the answer was not TLS.</summary>
    private static bool IsFallbackError(HttpRequestException e) =>
        e.HttpRequestError is HttpRequestError.SecureConnectionError or HttpRequestError.ConnectionError
            or HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded;

    /// <summary>Worth another attempt: connection-level failures and our own timeout (not the caller's cancellation, not TLS errors).</summary>
    private static bool IsTransient(Exception e, CancellationToken cancellationToken) => e switch
    {
        HttpRequestException h => h.HttpRequestError is not HttpRequestError.SecureConnectionError,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        IOException => true,
        _ => false,
    };

    private Task BackOffAsync(int attempt, CancellationToken cancellationToken) =>
        Task.Delay(_options.RetryDelay * (1 << (attempt - 1)), cancellationToken);

    private RegistryException Unreachable(ImageReference image, string host, Exception e, int attempts = 1)
    {
        var socket = e.InnerException as SocketException ?? e.InnerException?.InnerException as SocketException;
        var cause = e switch
        {
            OperationCanceledException => $"no answer within {_options.ResponseTimeout.TotalSeconds:0} s",
            HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError } =>
                $"the name does not resolve ({socket?.Message ?? e.Message}); check the registry name and DNS",
            HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } =>
                $"the TLS handshake failed ({e.InnerException?.Message ?? e.Message}); if it serves plain HTTP or a self-signed certificate, "
                + $"add it to {RegistryClientOptions.InsecureRegistriesVariable}",
            _ when socket?.SocketErrorCode == SocketError.ConnectionRefused => "connection refused",
            _ => socket?.Message ?? e.Message,
        };
        return new RegistryException(
            RegistryErrorKind.Unreachable,
            $"{Name(image)}: cannot reach {host}: {cause}{(attempts > 1 ? $" (after {attempts} attempts)" : "")}",
            e);
    }

    private RegistryException UnauthorizedError(ImageReference image, RegistryCredential? credential)
    {
        var login = image.Registry == ImageReference.DefaultRegistry ? "docker login" : $"docker login {image.Registry}";
        var fix = $"run `{login}` or set {DockerCredentialSource.UsernameVariable}/{DockerCredentialSource.PasswordVariable}";
        return new RegistryException(
            RegistryErrorKind.Unauthorized,
            credential is null
                ? $"{Name(image)}: 401 unauthorized from {image.RegistryHost}: the repository does not exist or needs credentials; {fix}"
                : $"{Name(image)}: 401 unauthorized from {image.RegistryHost} with the credentials of {credential}: "
                  + $"they were rejected or do not allow pulling {image.Repository}; {fix}");
    }

    private static async Task<RegistryException> StatusErrorAsync(
        ImageReference image, string host, string what, string notFoundRemedy, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var detail = await ReadErrorBodyAsync(response, cancellationToken);
        var says = detail is null ? "" : $" ({detail})";
        var status = $"{(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd();
        return (int)response.StatusCode switch
        {
            404 => new RegistryException(RegistryErrorKind.NotFound, $"{Name(image)}: {what} not found on {host}{says}; {notFoundRemedy}"),
            403 => new RegistryException(
                RegistryErrorKind.Denied, $"{Name(image)}: {host} denied access to {what} (403{says}); check that your account may pull {image.Repository}"),
            429 => new RegistryException(
                RegistryErrorKind.Protocol, $"{Name(image)}: {host} is rate-limiting pulls (429{says}); wait, or log in for a higher limit"),
            >= 500 => new RegistryException(
                RegistryErrorKind.Protocol, $"{Name(image)}: {host} answered {status} for {what}{says}; the registry has a problem, try again later"),
            _ => new RegistryException(RegistryErrorKind.Protocol, $"{Name(image)}: unexpected {status} from {host} for {what}{says}"),
        };
    }

    /// <summary>The distribution-spec error body <c>{"errors":[{"code","message"}]}</c> as <c>CODE: message; …</c>, or null.</summary>
    private static async Task<string?> ReadErrorBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        byte[]? body;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            body = await ReadCappedAsync(response.Content, 64 * 1024, timeout.Token);
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // The status alone still makes a useful error; the body was only for detail.
            return null;
        }

        if (body is not { Length: > 0 })
        {
            return null;
        }

        try
        {
            var errors = JsonSerializer.Deserialize(body, RegistryJsonContext.Default.RegistryErrorsDto)?.Errors;
            var parts = errors?.Select(err => string.Join(": ", new[] { err.Code, err.Message }.Where(s => !string.IsNullOrEmpty(s))))
                .Where(s => s.Length > 0).ToList();
            return parts is { Count: > 0 } ? string.Join("; ", parts) : null;
        }
        catch (JsonException)
        {
            // Proxies answer with HTML; a registry error body is the only thing worth quoting.
            return null;
        }
    }

    /// <summary>Reads a body of at most <paramref name="limit"/> bytes; null if it is longer.</summary>
    private static async Task<byte[]?> ReadCappedAsync(HttpContent content, long limit, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream(content.Headers.ContentLength is { } length && length <= limit ? (int)length : 0);
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + n > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }
}
