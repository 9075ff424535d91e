using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Matchlock.Core.Images.Registry;

public sealed partial class RegistryClient
{
    private const long MaxTokenResponseBytes = 1024 * 1024;

    /// <summary>
    /// Answers a 401 challenge. <c>Bearer</c> (Docker token auth, used by Docker Hub, ghcr.io, Harbor…):
    /// fetch a token from the realm, with our credentials if we have any, else anonymously (public
    /// images need a token too). <c>Basic</c>: send the credentials directly; without any there is
    /// nothing to answer with.
    /// </summary>
    private async Task<(AuthenticationHeaderValue Header, RegistryCredential? Credential)> AuthenticateAsync(
        ImageReference image, AuthChallenge? challenge, CancellationToken cancellationToken)
    {
        if (challenge is null)
        {
            throw new RegistryException(
                RegistryErrorKind.Protocol, $"{Name(image)}: {image.RegistryHost} answered 401 without a WWW-Authenticate challenge");
        }

        var credential = await _options.Credentials.GetCredentialAsync(image.Registry, cancellationToken);
        if (challenge.IsBasic)
        {
            if (credential?.Password is not { } password || credential.Username is not { } user)
            {
                throw UnauthorizedError(image, credential);
            }

            return (BasicHeader(user, password), credential);
        }

        if (!challenge.IsBearer)
        {
            throw new RegistryException(
                RegistryErrorKind.Protocol, $"{Name(image)}: {image.RegistryHost} asks for \"{challenge.Scheme}\" authentication, which is not supported (only Bearer and Basic)");
        }

        var token = await FetchTokenAsync(image, challenge, credential, cancellationToken);
        return (new AuthenticationHeaderValue("Bearer", token), credential);
    }

    /// <summary>
    /// Docker token authentication: GET realm?service=…&amp;scope=… (Basic credentials if any), or, for an
    /// identity token, the OAuth2 refresh-token grant as a POST (what <c>docker login</c> stores for
    /// registries that issue such tokens). The token comes back as <c>token</c> or <c>access_token</c>.
    /// </summary>
    private async Task<string> FetchTokenAsync(ImageReference image, AuthChallenge challenge, RegistryCredential? credential, CancellationToken cancellationToken)
    {
        if (challenge["realm"] is not { } realmText || !Uri.TryCreate(realmText, UriKind.Absolute, out var realm)
            || realm.Scheme is not ("https" or "http"))
        {
            throw new RegistryException(
                RegistryErrorKind.Protocol, $"{Name(image)}: {image.RegistryHost} sent a Bearer challenge without a usable realm URL");
        }

        var realmInsecure = IsInsecure(realm.Authority);
        if (credential is not null && realm.Scheme == "http" && !realmInsecure)
        {
            throw new RegistryException(
                RegistryErrorKind.Unauthorized,
                $"{Name(image)}: refusing to send the credentials of {credential} to the plain-HTTP token service {realm.Authority}; "
                + $"list it in {RegistryClientOptions.InsecureRegistriesVariable} if that is really intended");
        }

        var scope = challenge["scope"] ?? $"repository:{image.Repository}:pull";
        var service = challenge["service"];
        using var request = credential?.IdentityToken is { } refreshToken
            ? new HttpRequestMessage(HttpMethod.Post, realm)
            {
                Content = new FormUrlEncodedContent(
                [
                    new("grant_type", "refresh_token"),
                    new("refresh_token", refreshToken),
                    new("service", service ?? ""),
                    new("scope", scope),
                    new("client_id", "matchlock"),
                ]),
            }
            : new HttpRequestMessage(HttpMethod.Get, AppendQuery(realm, service, scope));
        if (credential is { Username: { } user, Password: { } password })
        {
            request.Headers.Authorization = BasicHeader(user, password);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ResponseTimeout);
        byte[]? body;
        HttpStatusCode status;
        try
        {
            using var response = await ClientFor(realmInsecure).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            status = response.StatusCode;
            body = response.IsSuccessStatusCode ? await ReadCappedAsync(response.Content, MaxTokenResponseBytes, timeout.Token) : null;
        }
        catch (Exception e) when (IsTransient(e, cancellationToken))
        {
            throw Unreachable(image, realm.Authority, e);
        }

        if (status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            throw UnauthorizedError(image, credential);
        }

        if (body is null)
        {
            throw new RegistryException(
                RegistryErrorKind.Protocol,
                $"{Name(image)}: the token service {realm.Authority} answered {(int)status}{(status == HttpStatusCode.OK ? " with more than 1 MiB" : "")}; try again later");
        }

        try
        {
            var parsed = JsonSerializer.Deserialize(body, RegistryJsonContext.Default.TokenResponseDto);
            if (parsed?.Token is { Length: > 0 } token)
            {
                return token;
            }

            if (parsed?.AccessToken is { Length: > 0 } accessToken)
            {
                return accessToken;
            }
        }
        catch (JsonException)
        {
            // Reported below with the same message as a response without a token.
        }

        throw new RegistryException(RegistryErrorKind.Protocol, $"{Name(image)}: the token service {realm.Authority} answered without a token");
    }

    private static Uri AppendQuery(Uri realm, string? service, string scope)
    {
        var query = new StringBuilder(realm.Query.Length > 1 ? realm.Query[1..] + "&" : "");
        if (service is not null)
        {
            query.Append("service=").Append(Uri.EscapeDataString(service)).Append('&');
        }

        query.Append("scope=").Append(Uri.EscapeDataString(scope));
        return new UriBuilder(realm) { Query = query.ToString() }.Uri;
    }

    private static AuthenticationHeaderValue BasicHeader(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
}
