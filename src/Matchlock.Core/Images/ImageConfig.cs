using System.Globalization;
using System.Text.Json;

namespace Matchlock.Core.Images;

/// <summary>
/// What an image says about how to run it: the <c>config</c> object of the OCI / Docker image
/// config (Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Labels) plus platform and layer
/// identity. Absent lists are empty, absent strings null.
/// </summary>
public sealed record ImageConfig
{
    public IReadOnlyList<string> Entrypoint { get; init; } = [];
    public IReadOnlyList<string> Cmd { get; init; } = [];

    /// <summary><c>NAME=value</c> entries, in image order.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    public string? WorkingDir { get; init; }

    /// <summary><c>user</c>, <c>uid</c>, <c>user:group</c> or <c>uid:gid</c>, as the image wrote it.</summary>
    public string? User { get; init; }

    /// <summary>e.g. <c>80/tcp</c>.</summary>
    public IReadOnlyList<string> ExposedPorts { get; init; } = [];
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public string? Architecture { get; init; }
    public string? Os { get; init; }

    /// <summary>The image's own creation time, when it records one.</summary>
    public DateTimeOffset? Created { get; init; }

    /// <summary>Digests of the uncompressed layers (<c>rootfs.diff_ids</c>), bottom first.</summary>
    public IReadOnlyList<string> DiffIds { get; init; } = [];

    /// <summary>Value equality, collections included (the generated record equality would compare list references).</summary>
    public bool Equals(ImageConfig? other) =>
        other is not null
        && Entrypoint.SequenceEqual(other.Entrypoint)
        && Cmd.SequenceEqual(other.Cmd)
        && Env.SequenceEqual(other.Env)
        && WorkingDir == other.WorkingDir
        && User == other.User
        && ExposedPorts.SequenceEqual(other.ExposedPorts)
        && Labels.Count == other.Labels.Count
        && Labels.All(kv => other.Labels.TryGetValue(kv.Key, out var value) && value == kv.Value)
        && Architecture == other.Architecture
        && Os == other.Os
        && Created == other.Created
        && DiffIds.SequenceEqual(other.DiffIds);

    public override int GetHashCode() =>
        HashCode.Combine(WorkingDir, User, Architecture, Os, Created, Entrypoint.Count, Cmd.Count, Env.Count);

    /// <summary>Parses an image config blob; malformed JSON becomes <see cref="ImageFormatException"/>.</summary>
    public static ImageConfig Parse(ReadOnlySpan<byte> json)
    {
        ImageConfigDto? dto;
        try
        {
            dto = JsonSerializer.Deserialize(json, ImageJsonContext.Default.ImageConfigDto);
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"image config is not valid JSON: {e.Message}", e);
        }

        if (dto is null)
        {
            throw new ImageFormatException("image config is empty (JSON null)");
        }

        var c = dto.Config;
        return new ImageConfig
        {
            Entrypoint = c?.Entrypoint ?? [],
            Cmd = c?.Cmd ?? [],
            Env = c?.Env ?? [],
            WorkingDir = string.IsNullOrEmpty(c?.WorkingDir) ? null : c.WorkingDir,
            User = string.IsNullOrEmpty(c?.User) ? null : c.User,
            ExposedPorts = c?.ExposedPorts is { } ports ? [.. ports.Keys.Order(StringComparer.Ordinal)] : [],
            Labels = c?.Labels?
                .Where(kv => kv.Value is not null)
                .ToDictionary(kv => kv.Key, kv => kv.Value!, StringComparer.Ordinal)
                ?? new Dictionary<string, string>(),
            Architecture = dto.Architecture,
            Os = dto.Os,
            Created = DateTimeOffset.TryParse(dto.Created, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var created)
                ? created
                : null,
            DiffIds = dto.Rootfs?.DiffIds ?? [],
        };
    }
}
