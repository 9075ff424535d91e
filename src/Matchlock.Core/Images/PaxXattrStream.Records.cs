using System.Globalization;
using System.Text;

namespace Matchlock.Core.Images;

/// <summary>An extended attribute to set on a flattened path: its name and exact value bytes.</summary>
internal readonly record struct Xattr(string Name, byte[] Value);

// PAX extended header records: parsing by length, taking the xattrs out, rewriting the header.
internal sealed partial class PaxXattrStream
{
    private const string SchilyPrefix = "SCHILY.xattr.";
    private const string LibarchivePrefix = "LIBARCHIVE.xattr.";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>True for PAX keys that carry an xattr (which this stream never lets through to TarReader).</summary>
    public static bool IsXattrKey(string key) =>
        key.StartsWith(SchilyPrefix, StringComparison.Ordinal) || key.StartsWith(LibarchivePrefix, StringComparison.Ordinal);

    /// <summary>One <c>"LEN KEY=VALUE\n"</c> record, as offsets into the header's data.</summary>
    private readonly record struct PaxRecord(int Start, int Length, int KeyStart, int KeyLength, int ValueStart, int ValueLength);

    /// <summary>The data of an 'x' or 'g' header is in: take its xattrs out and queue the header for TarReader.</summary>
    private void OnExtendedData()
    {
        var header = _extendedHeader!;
        var data = _collect.AsSpan(0, _extendedSize);
        var isGlobal = header[TypeFlagOffset] == (byte)'g';
        var kept = new List<PaxRecord>();
        var xattrs = new List<Xattr>();
        var fromLibarchive = new HashSet<string>(StringComparer.Ordinal);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var removed = false;
        foreach (var record in ParseRecords(data))
        {
            var keyBytes = data.Slice(record.KeyStart, record.KeyLength);
            var value = data.Slice(record.ValueStart, record.ValueLength);
            var key = Encoding.UTF8.GetString(keyBytes);
            if (!keys.Add(key))
            {
                // TarReader refuses duplicate keys too; for xattrs it would no longer see them.
                throw Malformed($"the key \"{key}\" appears twice");
            }

            if (key == TokenKey)
            {
                throw new ImageFormatException(
                    $"{_layer}: the PAX extended header at byte {_extendedHeaderOffset} of the layer tar uses the reserved key "
                    + $"\"{TokenKey}\"; refusing to import");
            }

            if (key.StartsWith(SchilyPrefix, StringComparison.Ordinal))
            {
                removed = true;
                var name = XattrName(keyBytes[SchilyPrefix.Length..]);
                // bsdtar writes each xattr twice (LIBARCHIVE. and SCHILY.); its base64 copy is the one kept.
                if (!fromLibarchive.Contains(name))
                {
                    SetXattr(xattrs, name, value.ToArray());
                }
            }
            else if (key.StartsWith(LibarchivePrefix, StringComparison.Ordinal))
            {
                removed = true;
                var name = Uri.UnescapeDataString(XattrName(keyBytes[LibarchivePrefix.Length..]));
                CheckXattrName(name);
                SetXattr(xattrs, name, DecodeBase64(key, value));
                fromLibarchive.Add(name);
            }
            else
            {
                kept.Add(record);
                if (!isGlobal && key == "size" && !value.IsEmpty)
                {
                    // TarReader ignores an empty size record and uses the header's field.
                    _paxSize = ParsePaxSize(value);
                }
            }
        }

        _state = State.Header;
        if (!removed)
        {
            // No xattr records: the header goes through byte for byte.
            var unchanged = new byte[BlockSize + _collect.Length];
            header.CopyTo(unchanged, 0);
            _collect.CopyTo(unchanged, BlockSize);
            Output(unchanged, unchanged.Length);
            return;
        }

        var body = new MemoryStream();
        foreach (var record in kept)
        {
            body.Write(data.Slice(record.Start, record.Length));
        }

        // Global headers were always ignored, their xattrs included; an entry's set waits for the flattener.
        if (!isGlobal && xattrs.Count > 0)
        {
            _captured.Add(++_lastToken, xattrs);
            body.Write(FormatRecord(TokenKey, _lastToken.ToString(CultureInfo.InvariantCulture)));
        }

        var size = (int)body.Length;
        if (size > MaxMetadataSize)
        {
            throw TooLarge(_extendedHeaderOffset, size);
        }

        var rewritten = new byte[BlockSize + size + Padding(size)];
        header.CopyTo(rewritten, 0);
        body.GetBuffer().AsSpan(0, size).CopyTo(rewritten.AsSpan(BlockSize));
        SetSizeAndChecksum(rewritten.AsSpan(0, BlockSize), size);
        Output(rewritten, rewritten.Length);
    }

    /// <summary>
    /// Splits PAX data into records strictly by their length prefix: a value may hold any byte,
    /// NUL and newline included (POSIX pax, "pax Extended Header"). Anything that is not a whole
    /// number of well-formed records is refused.
    /// </summary>
    private List<PaxRecord> ParseRecords(ReadOnlySpan<byte> data)
    {
        var records = new List<PaxRecord>();
        var position = 0;
        while (position < data.Length)
        {
            var rest = data[position..];
            // LEN is 1 to 7 decimal digits (a header holds at most 1 MiB), then one space.
            var space = rest[..Math.Min(rest.Length, 8)].IndexOf((byte)' ');
            if (space < 1 || rest[..space].ContainsAnyExceptInRange((byte)'0', (byte)'9'))
            {
                throw Malformed($"the record at byte {position} of its data does not start with a decimal length");
            }

            var length = int.Parse(rest[..space], NumberStyles.None, CultureInfo.InvariantCulture);
            if (length > rest.Length)
            {
                throw Malformed($"the record at byte {position} of its data claims {length} bytes, but only {rest.Length} remain");
            }

            // "LEN K=\n" is the shortest record: LEN, space, a one-byte key, '=', newline.
            if (length < space + 4 || rest[length - 1] != (byte)'\n')
            {
                throw Malformed($"the record at byte {position} of its data is not \"LEN KEY=VALUE\\n\" within its length {length}");
            }

            var body = rest[(space + 1)..(length - 1)];
            var equals = body.IndexOf((byte)'=');
            if (equals < 1)
            {
                throw Malformed($"the record at byte {position} of its data has no \"KEY=\"");
            }

            var keyStart = position + space + 1;
            records.Add(new PaxRecord(position, length, keyStart, equals, keyStart + equals + 1, body.Length - equals - 1));
            position += length;
        }

        return records;
    }

    /// <summary>The PAX <c>size</c> value, parsed as TarReader does (<c>long.Parse</c>, invariant), refused when invalid.</summary>
    private long ParsePaxSize(ReadOnlySpan<byte> value)
    {
        if (!long.TryParse(Encoding.UTF8.GetString(value), NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) || size < 0)
        {
            throw Malformed($"its \"size\" record \"{Encoding.UTF8.GetString(value)}\" is not a size");
        }

        return size;
    }

    private static void SetXattr(List<Xattr> xattrs, string name, byte[] value)
    {
        var index = xattrs.FindIndex(x => x.Name == name);
        if (index >= 0)
        {
            xattrs[index] = new Xattr(name, value);
        }
        else
        {
            xattrs.Add(new Xattr(name, value));
        }
    }

    /// <summary>An xattr name from a PAX key: valid UTF-8 (it is marshalled to lsetxattr as UTF-8), no NUL, not empty.</summary>
    private string XattrName(ReadOnlySpan<byte> bytes)
    {
        string name;
        try
        {
            name = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw RefusedName(Encoding.UTF8.GetString(bytes), "is not valid UTF-8");
        }

        CheckXattrName(name);
        return name;
    }

    private void CheckXattrName(string name)
    {
        if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal))
        {
            // lsetxattr takes a C string: a NUL would silently set a different attribute.
            throw RefusedName(name, name.Length == 0 ? "is empty" : "contains a NUL byte");
        }
    }

    /// <summary>bsdtar's base64 value; it may leave out the trailing '=' padding, which libarchive's reader tolerates too.</summary>
    private byte[] DecodeBase64(string key, ReadOnlySpan<byte> value)
    {
        var text = Encoding.ASCII.GetString(value);
        try
        {
            return Convert.FromBase64String(text.PadRight(text.Length + ((4 - (text.Length % 4)) % 4), '='));
        }
        catch (FormatException e)
        {
            throw new ImageFormatException($"{_layer}: xattr record \"{key}\" is not valid base64; refusing to import", e);
        }
    }

    private static byte[] FormatRecord(string key, string value)
    {
        // LEN counts itself: grow it until the digit count is stable.
        var body = Encoding.UTF8.GetBytes($" {key}={value}\n");
        var length = body.Length + 1;
        while (length != body.Length + length.ToString(CultureInfo.InvariantCulture).Length)
        {
            length = body.Length + length.ToString(CultureInfo.InvariantCulture).Length;
        }

        return [.. Encoding.ASCII.GetBytes(length.ToString(CultureInfo.InvariantCulture)), .. body];
    }

    /// <summary>Writes <paramref name="size"/> as 11 octal digits and a NUL, then recomputes the checksum (6 octal digits, NUL, space).</summary>
    private static void SetSizeAndChecksum(Span<byte> header, int size)
    {
        var sizeField = header.Slice(SizeOffset, SizeLength);
        sizeField.Clear();
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(SizeLength - 1, '0'), sizeField);

        var checksumField = header.Slice(ChecksumOffset, ChecksumLength);
        checksumField.Clear();
        Encoding.ASCII.GetBytes(Convert.ToString(HeaderChecksum(header, signed: false), 8).PadLeft(6, '0'), checksumField);
        checksumField[7] = (byte)' ';
    }

    private ImageFormatException Malformed(string what) =>
        new($"{_layer}: the PAX extended header at byte {_extendedHeaderOffset} of the layer tar is malformed ({what}); "
            + "the layer is corrupt, re-export the image and import again");

    private ImageFormatException RefusedName(string name, string why) =>
        new($"{_layer}: the PAX extended header at byte {_extendedHeaderOffset} of the layer tar has an xattr name "
            + $"\"{name.Replace("\0", "\\0", StringComparison.Ordinal)}\" that {why}; refusing to import");
}
