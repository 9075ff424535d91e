using System.Globalization;
using System.Text.Json;
using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

/// <summary>
/// Entry points: start sandboxes, and the <c>matchlock</c> CLI commands the protocol has no
/// method for (<c>rm</c>, <c>volume</c>).
/// </summary>
public static class MatchlockClient
{
    /// <summary>
    /// Creates a sandbox and starts the image's ENTRYPOINT/CMD in the background (its output goes
    /// to the log, <see cref="Sandbox.GetLogAsync"/>); fails if it exits non-zero within 500 ms.
    /// </summary>
    /// <exception cref="ArgumentException">The options are inconsistent (the message says how to fix them).</exception>
    /// <exception cref="MatchlockSandboxException">The sandbox could not be created.</exception>
    /// <exception cref="MatchlockInvalidRequestException">The server refused a field.</exception>
    public static Task<Sandbox> LaunchAsync(SandboxOptions options, CancellationToken cancellationToken = default) =>
        Sandbox.CreateAsync(options, MatchlockClientOptions.Default, launchEntrypoint: true, cancellationToken);

    /// <inheritdoc cref="LaunchAsync(SandboxOptions, CancellationToken)"/>
    public static Task<Sandbox> LaunchAsync(SandboxOptions options, MatchlockClientOptions client, CancellationToken cancellationToken = default) =>
        Sandbox.CreateAsync(options, client, launchEntrypoint: true, cancellationToken);

    /// <summary>Creates a sandbox without starting the image's entrypoint: it only runs what you exec.</summary>
    /// <exception cref="ArgumentException">The options are inconsistent.</exception>
    /// <exception cref="MatchlockSandboxException">The sandbox could not be created.</exception>
    public static Task<Sandbox> CreateAsync(SandboxOptions options, CancellationToken cancellationToken = default) =>
        Sandbox.CreateAsync(options, MatchlockClientOptions.Default, launchEntrypoint: false, cancellationToken);

    /// <inheritdoc cref="CreateAsync(SandboxOptions, CancellationToken)"/>
    public static Task<Sandbox> CreateAsync(SandboxOptions options, MatchlockClientOptions client, CancellationToken cancellationToken = default) =>
        Sandbox.CreateAsync(options, client, launchEntrypoint: false, cancellationToken);

    /// <summary>Deletes a stopped sandbox's state (<c>matchlock rm &lt;id&gt;</c>).</summary>
    public static async Task RemoveSandboxAsync(string id, MatchlockClientOptions? client = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        client ??= MatchlockClientOptions.Default;
        await CommandLine.RunAsync(client.ResolvedBinary, client.UseSudo, ["rm", id], cancellationToken);
    }

    /// <summary>Creates a named ext4 volume (<c>matchlock volume create NAME --size MB --json</c>).</summary>
    public static async Task<VolumeInfo> CreateVolumeAsync(string name, int sizeMb = 10240, MatchlockClientOptions? client = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeMb);
        client ??= MatchlockClientOptions.Default;
        var output = await CommandLine.RunAsync(
            client.ResolvedBinary,
            client.UseSudo,
            ["volume", "create", name.Trim(), "--size", sizeMb.ToString(CultureInfo.InvariantCulture), "--json"],
            cancellationToken);
        using var document = ParseCliJson(output, "volume create");
        return ReadVolume(document.RootElement, "volume create", fallbackName: name.Trim());
    }

    /// <summary>Lists named volumes (<c>matchlock volume ls --json</c>).</summary>
    public static async Task<IReadOnlyList<VolumeInfo>> ListVolumesAsync(MatchlockClientOptions? client = null, CancellationToken cancellationToken = default)
    {
        client ??= MatchlockClientOptions.Default;
        var output = await CommandLine.RunAsync(client.ResolvedBinary, client.UseSudo, ["volume", "ls", "--json"], cancellationToken);
        using var document = ParseCliJson(output, "volume ls");
        return document.RootElement.ValueKind switch
        {
            JsonValueKind.Null => [],
            JsonValueKind.Array => document.RootElement.EnumerateArray().Select(v => ReadVolume(v, "volume ls", fallbackName: null)).ToArray(),
            _ => throw new MatchlockRpcException(MatchlockRpcException.InternalError, "volume ls --json: expected an array"),
        };
    }

    /// <summary>Removes a named volume (<c>matchlock volume rm NAME</c>).</summary>
    public static async Task RemoveVolumeAsync(string name, MatchlockClientOptions? client = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        client ??= MatchlockClientOptions.Default;
        await CommandLine.RunAsync(client.ResolvedBinary, client.UseSudo, ["volume", "rm", name.Trim()], cancellationToken);
    }

    private static JsonDocument ParseCliJson(string output, string what)
    {
        try
        {
            return JsonDocument.Parse(output);
        }
        catch (JsonException ex)
        {
            throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"{what} --json printed something that is not JSON: {ex.Message}");
        }
    }

    private static VolumeInfo ReadVolume(JsonElement entry, string what, string? fallbackName)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"{what} --json: expected an object, got {entry.ValueKind}");
        }

        var name = Wire.String(entry, "name") is { Length: > 0 } n ? n : fallbackName;
        var path = Wire.String(entry, "path");
        if (string.IsNullOrEmpty(name) || string.IsNullOrEmpty(path))
        {
            throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"{what} --json: an entry lacks its name or path: {entry.GetRawText()}");
        }

        // The original prints the size as text ("10.0 MB"); a number (bytes) is kept as its digits.
        var size = entry.TryGetProperty("size", out var s) ? s.ValueKind == JsonValueKind.String ? s.GetString()! : s.GetRawText() : "";
        return new VolumeInfo(name, size, path);
    }
}
