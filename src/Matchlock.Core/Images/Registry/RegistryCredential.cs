namespace Matchlock.Core.Images.Registry;

/// <summary>
/// Credentials for one registry: a user name and password (or personal access token), or an OAuth2
/// identity (refresh) token as <c>docker login</c> stores for some registries. A class rather than a
/// record on purpose: a record's generated <c>ToString</c> would print the secret into any log.
/// </summary>
public sealed class RegistryCredential
{
    private RegistryCredential(string? username, string? password, string? identityToken, string source)
    {
        Username = username;
        Password = password;
        IdentityToken = identityToken;
        Source = source;
    }

    /// <summary>User name; null for a bare identity token.</summary>
    public string? Username { get; }

    /// <summary>Password or access token for Basic authentication; null for an identity token.</summary>
    public string? Password { get; }

    /// <summary>OAuth2 refresh token exchanged at the token endpoint; null for user name and password.</summary>
    public string? IdentityToken { get; }

    /// <summary>Where the credential came from, for error messages (never the secret), e.g. <c>~/.docker/config.json</c>.</summary>
    public string Source { get; }

    public static RegistryCredential FromPassword(string username, string password, string source)
    {
        ArgumentException.ThrowIfNullOrEmpty(username);
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(source);
        return new RegistryCredential(username, password, null, source);
    }

    public static RegistryCredential FromIdentityToken(string identityToken, string? username, string source)
    {
        ArgumentException.ThrowIfNullOrEmpty(identityToken);
        ArgumentNullException.ThrowIfNull(source);
        return new RegistryCredential(username, null, identityToken, source);
    }

    public override string ToString() => $"{Username ?? "(identity token)"} from {Source}";
}

/// <summary>Finds credentials for a registry (<c>docker.io</c>, <c>ghcr.io</c>, <c>localhost:5000</c>).</summary>
public interface IRegistryCredentialSource
{
    /// <summary>Credentials for <paramref name="registry"/>, or null to pull anonymously.</summary>
    /// <exception cref="RegistryException">The configuration names a source that fails (<see cref="RegistryErrorKind.Credentials"/>).</exception>
    Task<RegistryCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken);
}
