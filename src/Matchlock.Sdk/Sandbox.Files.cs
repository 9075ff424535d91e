using System.Text;
using System.Text.Json;
using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

public sealed partial class Sandbox
{
    private const UnixFileMode DefaultFileMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> in the guest (missing parent
    /// directories are made 0755), with <paramref name="mode"/> (default 0644). The VFS action
    /// hooks (op <c>write</c>) and then the mutate hooks run first (<see cref="VfsHookRule"/>).
    /// </summary>
    /// <exception cref="MatchlockFileException">The file could not be written.</exception>
    /// <exception cref="MatchlockVfsHookBlockedException">An action hook refused the write.</exception>
    public async Task WriteFileAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode? mode = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var bits = (int)(mode ?? DefaultFileMode);
        if (_vfsHooks is { } hooks)
        {
            hooks.CheckAction(VfsOps.Write, path, content.Length, (uint)bits);
            content = hooks.MutateWrite(path, content, (uint)bits);
        }

        await _rpc.CallAsync(
            "write_file",
            w =>
            {
                w.WriteString("path", path);
                w.WriteBase64String("content", content.Span);
                w.WriteNumber("mode", bits); // always sent, as the original clients do
            },
            cancellationToken);
    }

    /// <summary>Writes <paramref name="content"/> as UTF-8 (see the bytes overload).</summary>
    public Task WriteFileAsync(string path, string content, UnixFileMode? mode = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        return WriteFileAsync(path, Encoding.UTF8.GetBytes(content), mode, cancellationToken);
    }

    /// <summary>Reads a regular file of the guest (at most 16 MiB). The VFS action hooks (op <c>read</c>) run first.</summary>
    /// <exception cref="MatchlockFileException">It does not exist, is not a regular file, or is too large.</exception>
    /// <exception cref="MatchlockVfsHookBlockedException">An action hook refused the read.</exception>
    public async Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _vfsHooks?.CheckAction(VfsOps.Read, path, 0, 0);
        var result = await _rpc.CallAsync("read_file", w => w.WriteString("path", path), cancellationToken);
        return Wire.Base64(result, "read_file", "content");
    }

    /// <summary>Reads a guest file as UTF-8 text.</summary>
    public async Task<string> ReadFileTextAsync(string path, CancellationToken cancellationToken = default) =>
        Encoding.UTF8.GetString(await ReadFileAsync(path, cancellationToken));

    /// <summary>Lists a guest directory. The VFS action hooks (op <c>readdir</c>) run first.</summary>
    /// <exception cref="MatchlockFileException">It does not exist or is not a directory.</exception>
    /// <exception cref="MatchlockVfsHookBlockedException">An action hook refused the listing.</exception>
    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _vfsHooks?.CheckAction(VfsOps.ReadDir, path, 0, 0);
        var result = await _rpc.CallAsync("list_files", w => w.WriteString("path", path), cancellationToken);
        var entries = new List<FileEntry>();
        foreach (var file in Wire.Required(result, "list_files", "files").EnumerateArray())
        {
            entries.Add(new FileEntry(
                Wire.Required(file, "list_files", "name").GetString() ?? "",
                Wire.Required(file, "list_files", "size").GetInt64(),
                Wire.Required(file, "list_files", "mode").GetUInt32(),
                Wire.Required(file, "list_files", "is_dir").GetBoolean())
            {
                ModifiedAt = ModTime(file),
            });
        }

        return entries;
    }

    private static DateTimeOffset? ModTime(JsonElement file)
    {
        if (!file.TryGetProperty("mod_time", out var value) || value.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        // Go's RFC 3339 times may carry nine fractional digits, more than JSON's ISO reader takes.
        return value.TryGetDateTimeOffset(out var at) || DateTimeOffset.TryParse(value.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out at)
            ? at
            : null;
    }
}
