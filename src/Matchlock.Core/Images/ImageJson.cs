using System.Text.Json;
using System.Text.Json.Serialization;

namespace Matchlock.Core.Images;

// Wire shapes of the JSON documents we read (OCI image-spec, Docker image spec v1.2 / `docker save`)
// and write (store metadata). Source-generated so the store works trimmed/AOT without reflection.
// Property names are spelled out: the formats mix camelCase (OCI) with PascalCase (Docker config).

internal sealed class ImageConfigDto
{
    [JsonPropertyName("architecture")] public string? Architecture { get; set; }
    [JsonPropertyName("os")] public string? Os { get; set; }
    [JsonPropertyName("created")] public string? Created { get; set; }
    [JsonPropertyName("config")] public ContainerConfigDto? Config { get; set; }
    [JsonPropertyName("rootfs")] public RootfsDto? Rootfs { get; set; }
}

internal sealed class ContainerConfigDto
{
    [JsonPropertyName("User")] public string? User { get; set; }
    [JsonPropertyName("Env")] public List<string>? Env { get; set; }
    [JsonPropertyName("Entrypoint")] public List<string>? Entrypoint { get; set; }
    [JsonPropertyName("Cmd")] public List<string>? Cmd { get; set; }
    [JsonPropertyName("WorkingDir")] public string? WorkingDir { get; set; }
    [JsonPropertyName("ExposedPorts")] public Dictionary<string, JsonElement>? ExposedPorts { get; set; }
    [JsonPropertyName("Labels")] public Dictionary<string, string?>? Labels { get; set; }
}

internal sealed class RootfsDto
{
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("diff_ids")] public List<string>? DiffIds { get; set; }
}

/// <summary>One entry of a <c>docker save</c> <c>manifest.json</c>.</summary>
internal sealed class DockerManifestEntryDto
{
    [JsonPropertyName("Config")] public string? Config { get; set; }
    [JsonPropertyName("RepoTags")] public List<string>? RepoTags { get; set; }
    [JsonPropertyName("Layers")] public List<string>? Layers { get; set; }
}

internal sealed class OciDescriptorDto
{
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("digest")] public string? Digest { get; set; }
    [JsonPropertyName("size")] public long Size { get; set; }
    [JsonPropertyName("annotations")] public Dictionary<string, string>? Annotations { get; set; }
    [JsonPropertyName("platform")] public OciPlatformDto? Platform { get; set; }
}

internal sealed class OciPlatformDto
{
    [JsonPropertyName("architecture")] public string? Architecture { get; set; }
    [JsonPropertyName("os")] public string? Os { get; set; }
}

/// <summary>An OCI image index (<c>index.json</c> or a nested index blob).</summary>
internal sealed class OciIndexDto
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; set; }
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("manifests")] public List<OciDescriptorDto>? Manifests { get; set; }
}

internal sealed class OciManifestDto
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; set; }
    [JsonPropertyName("mediaType")] public string? MediaType { get; set; }
    [JsonPropertyName("config")] public OciDescriptorDto? Config { get; set; }
    [JsonPropertyName("layers")] public List<OciDescriptorDto>? Layers { get; set; }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ImageConfigDto))]
[JsonSerializable(typeof(List<DockerManifestEntryDto>))]
[JsonSerializable(typeof(OciIndexDto))]
[JsonSerializable(typeof(OciManifestDto))]
internal sealed partial class ImageJsonContext : JsonSerializerContext;
