using System.Text.Json.Serialization;

namespace Matchlock.Core.Images.Registry;

// Wire shapes read from registries (OCI image-spec manifests and indexes, Docker schema 2, the
// distribution-spec error body, token responses) and from Docker's client configuration. Source
// generated like ImageJsonContext so the client works trimmed/AOT.

internal sealed class RegistryDescriptorDto
{
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("digest")] public string? Digest { get; set; }
    [JsonPropertyName("size")] public long? Size { get; set; }
    [JsonPropertyName("urls")] public List<string>? Urls { get; set; }
    [JsonPropertyName("platform")] public RegistryPlatformDto? Platform { get; set; }
}

internal sealed class RegistryPlatformDto
{
    [JsonPropertyName("os")] public string? Os { get; set; }
    [JsonPropertyName("architecture")] public string? Architecture { get; set; }
    [JsonPropertyName("variant")] public string? Variant { get; set; }
}

/// <summary>Any manifest-like document: an index has <c>manifests</c>, an image manifest <c>config</c> and <c>layers</c>.</summary>
internal sealed class RegistryManifestDto
{
    [JsonPropertyName("schemaVersion")] public int? SchemaVersion { get; set; }
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("config")] public RegistryDescriptorDto? Config { get; set; }
    [JsonPropertyName("layers")] public List<RegistryDescriptorDto>? Layers { get; set; }
    [JsonPropertyName("manifests")] public List<RegistryDescriptorDto>? Manifests { get; set; }
}

internal sealed class RegistryErrorsDto
{
    [JsonPropertyName("errors")] public List<RegistryErrorDto>? Errors { get; set; }
}

internal sealed class RegistryErrorDto
{
    [JsonPropertyName("code")] public string? Code { get; set; }
    [JsonPropertyName("message")] public string? Message { get; set; }
}

/// <summary>Token endpoint response (Docker token auth spec): either field may carry the token.</summary>
internal sealed class TokenResponseDto
{
    [JsonPropertyName("token")] public string? Token { get; set; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; set; }
}

/// <summary>The parts of <c>~/.docker/config.json</c> that hold or locate credentials.</summary>
internal sealed class DockerConfigDto
{
    [JsonPropertyName("auths")] public Dictionary<string, DockerAuthDto?>? Auths { get; set; }
    [JsonPropertyName("credsStore")] public string? CredsStore { get; set; }
    [JsonPropertyName("credHelpers")] public Dictionary<string, string>? CredHelpers { get; set; }
}

internal sealed class DockerAuthDto
{
    [JsonPropertyName("auth")] public string? Auth { get; set; }
    [JsonPropertyName("username")] public string? Username { get; set; }
    [JsonPropertyName("password")] public string? Password { get; set; }
    [JsonPropertyName("identitytoken")] public string? IdentityToken { get; set; }
}

/// <summary>Output of <c>docker-credential-NAME get</c>.</summary>
internal sealed class CredentialHelperOutputDto
{
    [JsonPropertyName("Username")] public string? Username { get; set; }
    [JsonPropertyName("Secret")] public string? Secret { get; set; }
}

[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(RegistryManifestDto))]
[JsonSerializable(typeof(RegistryErrorsDto))]
[JsonSerializable(typeof(TokenResponseDto))]
[JsonSerializable(typeof(DockerConfigDto))]
[JsonSerializable(typeof(CredentialHelperOutputDto))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
