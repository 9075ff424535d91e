using System.Formats.Tar;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Builds an uncompressed layer tar in memory, deterministically: entries sorted by name, mtime
/// 0, uid/gid 0, GNU format (no PAX atime/ctime records that would vary).
/// </summary>
public sealed class LayerBuilder
{
    private readonly SortedDictionary<string, Func<GnuTarEntry>> _entries = new(StringComparer.Ordinal);

    public static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    public LayerBuilder Directory(string path, string mode = "755") =>
        Add(path.TrimEnd('/') + "/", () => new GnuTarEntry(TarEntryType.Directory, path.TrimEnd('/') + "/") { Mode = Mode(mode) });

    public LayerBuilder File(string path, byte[] content, string mode = "644") =>
        Add(path, () => new GnuTarEntry(TarEntryType.RegularFile, path) { Mode = Mode(mode), DataStream = new MemoryStream(content) });

    public LayerBuilder File(string path, string content, string mode = "644") => File(path, System.Text.Encoding.UTF8.GetBytes(content), mode);

    public LayerBuilder Symlink(string path, string target) =>
        Add(path, () => new GnuTarEntry(TarEntryType.SymbolicLink, path) { LinkName = target, Mode = Mode("777") });

    public LayerBuilder CharacterDevice(string path, int major, int minor) =>
        Add(path, () => new GnuTarEntry(TarEntryType.CharacterDevice, path) { DeviceMajor = major, DeviceMinor = minor, Mode = Mode("666") });

    public byte[] Build()
    {
        using var output = new MemoryStream();
        using (var writer = new TarWriter(output, TarEntryFormat.Gnu, leaveOpen: true))
        {
            foreach (var make in _entries.Values)
            {
                var entry = make();
                entry.ModificationTime = DateTimeOffset.UnixEpoch;
                entry.AccessTime = DateTimeOffset.UnixEpoch;
                entry.ChangeTime = DateTimeOffset.UnixEpoch;
                entry.Uid = 0;
                entry.Gid = 0;
                writer.WriteEntry(entry);
            }
        }

        return output.ToArray();
    }

    private LayerBuilder Add(string name, Func<GnuTarEntry> make)
    {
        _entries[name] = make;
        return this;
    }
}
