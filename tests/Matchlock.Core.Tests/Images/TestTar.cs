using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Matchlock.Core.Tests.Images;

/// <summary>Builds layer tars in memory, entry by entry, with full control over names and headers.</summary>
internal sealed class TestTar
{
    private readonly MemoryStream _buffer = new();
    private readonly TarWriter _writer;

    public TestTar()
    {
        _writer = new TarWriter(_buffer, TarEntryFormat.Pax, leaveOpen: true);
    }

    public static readonly DateTimeOffset DefaultTime = new(2020, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public TestTar Dir(string name, int mode = 0x1ED, int uid = 0, int gid = 0, DateTimeOffset? mtime = null) =>
        Add(new PaxTarEntry(TarEntryType.Directory, name), mode, uid, gid, mtime);

    public TestTar File(string name, string content, int mode = 0x1A4, int uid = 0, int gid = 0,
        DateTimeOffset? mtime = null, IDictionary<string, string>? pax = null)
    {
        var entry = pax is null ? new PaxTarEntry(TarEntryType.RegularFile, name) : new PaxTarEntry(TarEntryType.RegularFile, name, pax);
        entry.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
        return Add(entry, mode, uid, gid, mtime);
    }

    public TestTar Symlink(string name, string target, int uid = 0, int gid = 0) =>
        Add(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target }, 0x1FF, uid, gid, null);

    public TestTar HardLink(string name, string target) =>
        Add(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target }, 0x1A4, 0, 0, null);

    public TestTar Fifo(string name, int mode = 0x1A4) => Add(new PaxTarEntry(TarEntryType.Fifo, name), mode, 0, 0, null);

    public TestTar CharDevice(string name) =>
        Add(new PaxTarEntry(TarEntryType.CharacterDevice, name) { DeviceMajor = 1, DeviceMinor = 3 }, 0x1B6, 0, 0, null);

    /// <summary>Whiteout marker (empty regular file) — just a file with a special name.</summary>
    public TestTar Whiteout(string name) => File(name, "");

    public byte[] ToArray()
    {
        _writer.Dispose();
        return _buffer.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var compressor = new ZstdSharp.Compressor(3);
        return compressor.Wrap(data).ToArray();
    }

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private TestTar Add(PosixTarEntry entry, int mode, int uid, int gid, DateTimeOffset? mtime)
    {
        entry.Mode = (UnixFileMode)mode;
        entry.Uid = uid;
        entry.Gid = gid;
        entry.ModificationTime = mtime ?? DefaultTime;
        _writer.WriteEntry(entry);
        return this;
    }
}
