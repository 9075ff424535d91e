using System.Globalization;
using System.Text.Json;

namespace Matchlock.Rpc.Methods;

/// <summary><c>write_file</c>, <c>read_file</c> (regular files up to 16 MiB), <c>list_files</c>.</summary>
internal static class FileMethods
{
    public static async Task<Action<Utf8JsonWriter>> WriteAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var path = GuestPath(call.Params);
        var content = call.Params.Base64("content");
        var mode = call.Params.OptionalInt32("mode", 0, 0xFFF) is { } m and not 0 ? m : 0x1A4; // 0 → 0644, as the original
        using var stream = new MemoryStream(content, writable: false);
        await sandbox.WriteFileAsync(path, stream, mode, call.Cancelled);
        return _ => { };
    }

    public static async Task<Action<Utf8JsonWriter>> ReadAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var path = GuestPath(call.Params);
        using var buffer = new MemoryStream();
        await sandbox.ReadFileAsync(path, buffer, call.Cancelled);
        var content = buffer.ToArray();
        return w => w.WriteBase64String("content", content);
    }

    public static async Task<Action<Utf8JsonWriter>> ListAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var path = GuestPath(call.Params);
        var files = await sandbox.ListFilesAsync(path, call.Cancelled);
        return w =>
        {
            w.WriteStartArray("files");
            foreach (var f in files)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                w.WriteNumber("size", f.Size);
                w.WriteNumber("mode", f.Mode);
                // RFC 3339, as the original encodes Go's time.Time.
                w.WriteString("mod_time", DateTimeOffset.FromUnixTimeSeconds(f.ModTimeUnix).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
                w.WriteBoolean("is_dir", f.IsDir);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        };
    }

    private static string GuestPath(RpcParams p)
    {
        var path = p.String("path");
        return path.StartsWith('/') && !path.Contains('\0', StringComparison.Ordinal)
            ? path
            : throw RpcException.InvalidParams($"params.path \"{path}\": expected an absolute path in the guest (starting with /)");
    }
}
