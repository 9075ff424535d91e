using System.Text.Json;
using System.Text.Json.Serialization;

namespace Matchlock.Core.State;

/// <summary>
/// What a sandbox was asked to be, as <c>matchlock get</c> shows it under <c>config</c>
/// (docs/COMPATIBILITY.md "CLI"): the image, resources, the command's environment, working directory
/// and user, the network policy. Secrets appear by name only: no value is ever written here.
/// Kept as <see cref="FileName"/> in the VM directory by the CLI that started the sandbox (built by its
/// <c>RunConfig</c>).
/// </summary>
public sealed record VmConfig
{
    public const string FileName = "config.json";

    [JsonPropertyName("image")] public required string Image { get; init; }

    [JsonPropertyName("cpus")] public double Cpus { get; init; }

    [JsonPropertyName("memory_mb")] public int MemoryMb { get; init; }

    [JsonPropertyName("disk_size_mb")] public int? DiskSizeMb { get; init; }

    [JsonPropertyName("hostname")] public string? Hostname { get; init; }

    /// <summary>The variables the caller set (<c>-e</c>, <c>--env-file</c>), resolved; not the image's.</summary>
    [JsonPropertyName("env")] public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    [JsonPropertyName("workdir")] public string? WorkingDir { get; init; }

    [JsonPropertyName("user")] public string? User { get; init; }

    /// <summary>The command started with the sandbox, as run (entrypoint included); absent when there was none.</summary>
    [JsonPropertyName("command")] public IReadOnlyList<string>? Command { get; init; }

    [JsonPropertyName("no_network")] public bool NoNetwork { get; init; }

    [JsonPropertyName("allowed_hosts")] public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>Secret names (never values).</summary>
    [JsonPropertyName("secrets")] public IReadOnlyList<string> Secrets { get; init; } = [];

    /// <summary><c>--add-host</c> entries as <c>HOST:IP</c>.</summary>
    [JsonPropertyName("add_hosts")] public IReadOnlyList<string> AddHosts { get; init; } = [];

    /// <summary>Writes it into <paramref name="vmDir"/> (0600: the environment may matter to its owner).</summary>
    public void Write(string vmDir)
    {
        var path = Path.Combine(vmDir, FileName);
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        JsonSerializer.Serialize(file, this, VmConfigJsonContext.Default.VmConfig);
    }

    /// <summary>The config kept in <paramref name="vmDir"/>; null when there is none or it cannot be read.</summary>
    public static VmConfig? TryRead(string vmDir)
    {
        try
        {
            using var file = File.OpenRead(Path.Combine(vmDir, FileName));
            return JsonSerializer.Deserialize(file, VmConfigJsonContext.Default.VmConfig);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    /// <summary>The config <c>get</c> shows when the sandbox kept none (the rpc's): what state.db has.</summary>
    public static VmConfig FromRecord(VmRecord vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return new VmConfig { Image = vm.Image, Cpus = vm.Cpus, MemoryMb = vm.MemoryMb, Hostname = vm.Hostname };
    }

    /// <summary>Writes it as one JSON object (for <c>get</c>).</summary>
    public void WriteTo(Utf8JsonWriter writer) => JsonSerializer.Serialize(writer, this, VmConfigJsonContext.Default.VmConfig);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VmConfig))]
internal sealed partial class VmConfigJsonContext : JsonSerializerContext;
