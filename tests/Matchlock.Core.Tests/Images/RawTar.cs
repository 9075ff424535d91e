using System.Text;

namespace Matchlock.Core.Tests.Images;

/// <summary>
/// Writes tar headers and PAX records byte by byte, for what <see cref="System.Formats.Tar.TarWriter"/>
/// cannot produce: binary PAX values (it encodes strings as UTF-8), malformed records, GNU long names
/// next to PAX entries.
/// </summary>
internal sealed class RawTar
{
    private readonly MemoryStream _buffer = new();

    /// <summary>cap_net_raw+ep as <c>setcap</c> stores it: VFS_CAP_REVISION_2 with the effective flag, CAP_NET_RAW (13) permitted.</summary>
    public static byte[] CapNetRaw => [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, .. new byte[12]];

    /// <summary>A value TarReader cannot carry: NUL, a byte that is not UTF-8, a newline and an equals sign.</summary>
    public static byte[] Binary => [0x00, 0xff, (byte)'\n', (byte)'='];

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>A PAX 'x' header with well-formed records (values are raw bytes).</summary>
    public RawTar Pax(params (string Key, byte[] Value)[] records) => PaxData('x', [.. records.SelectMany(r => Record(r.Key, r.Value))]);

    /// <summary>A PAX 'g' (global) header.</summary>
    public RawTar Global(params (string Key, byte[] Value)[] records) => PaxData('g', [.. records.SelectMany(r => Record(r.Key, r.Value))]);

    /// <summary>An extended header whose data is exactly <paramref name="data"/> (e.g. a malformed record).</summary>
    public RawTar PaxData(char type, byte[] data) => Entry("PaxHeaders.0/entry", type, data);

    /// <summary>
    /// A regular file. <paramref name="sizeField"/> overrides what the header's size field says (a PAX
    /// <c>size</c> record then gives the real one); <paramref name="base256"/> writes it in GNU base-256.
    /// </summary>
    public RawTar File(string name, byte[] content, bool gnu = false, long? sizeField = null, bool base256 = false) =>
        Entry(name, '0', content, gnu: gnu, sizeField: sizeField, base256: base256);

    public RawTar File(string name, string content) => File(name, Utf8(content));

    public RawTar Dir(string name) => Entry(name, '5', []);

    public RawTar HardLink(string name, string target) => Entry(name, '1', [], linkName: target);

    /// <summary>A GNU 'L' header naming the next entry (for names over 100 bytes), as GNU tar and Go write it.</summary>
    public RawTar GnuLongName(string name) => Entry("././@LongLink", 'L', [.. Utf8(name), 0], gnu: true);

    /// <summary>Appends bytes as they are (e.g. a tar written by TarWriter, without its end marker).</summary>
    public RawTar Raw(byte[] bytes)
    {
        _buffer.Write(bytes);
        return this;
    }

    /// <summary>The archive with its end marker (two zero blocks).</summary>
    public byte[] ToArray()
    {
        _buffer.Write(new byte[1024]);
        return _buffer.ToArray();
    }

    /// <summary>One PAX record, <c>"LEN KEY=VALUE\n"</c>, where LEN counts the whole record in bytes.</summary>
    public static byte[] Record(string key, byte[] value)
    {
        var body = (byte[])[.. Utf8($" {key}="), .. value, (byte)'\n'];
        var length = body.Length + 1;
        while (length != body.Length + length.ToString(System.Globalization.CultureInfo.InvariantCulture).Length)
        {
            length++;
        }

        return [.. Utf8(length.ToString(System.Globalization.CultureInfo.InvariantCulture)), .. body];
    }

    private RawTar Entry(string name, char type, byte[] data, string linkName = "", bool gnu = false, long? sizeField = null, bool base256 = false)
    {
        var header = new byte[512];
        var nameBytes = Utf8(name);
        nameBytes.AsSpan(0, Math.Min(100, nameBytes.Length)).CopyTo(header);
        Octal(header, 100, 8, type == '5' ? 0x1ED : 0x1A4); // mode
        Octal(header, 108, 8, 0); // uid
        Octal(header, 116, 8, 0); // gid
        if (base256)
        {
            header[124] = 0x80;
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(128), sizeField ?? data.Length);
        }
        else
        {
            Octal(header, 124, 12, sizeField ?? data.Length);
        }

        Octal(header, 136, 12, 1577934245); // mtime: TestTar.DefaultTime
        header[156] = (byte)type;
        Utf8(linkName).CopyTo(header, 157);
        (gnu ? "ustar  \0"u8 : "ustar\u000000"u8).CopyTo(header.AsSpan(257));
        "root"u8.CopyTo(header.AsSpan(265));
        "root"u8.CopyTo(header.AsSpan(297));
        header.AsSpan(148, 8).Fill((byte)' ');
        var sum = header.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ", header.AsSpan(148));

        _buffer.Write(header);
        _buffer.Write(data);
        _buffer.Write(new byte[(512 - (data.Length % 512)) % 512]);
        return this;
    }

    private static void Octal(byte[] header, int offset, int length, long value) =>
        Encoding.ASCII.GetBytes(Convert.ToString(value, 8).PadLeft(length - 1, '0') + "\0", header.AsSpan(offset));
}
