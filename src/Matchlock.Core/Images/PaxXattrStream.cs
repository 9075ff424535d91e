using System.Buffers.Binary;
using System.Globalization;

namespace Matchlock.Core.Images;

/// <summary>
/// Sits between a layer tar and <see cref="System.Formats.Tar.TarReader"/> and takes the extended
/// attributes out of PAX headers with their exact bytes, for <see cref="LayerFlattener"/> to apply.
/// </summary>
/// <remarks>
/// <para>
/// Why: layers carry xattrs as PAX records <c>SCHILY.xattr.NAME=VALUE</c> whose VALUE is raw bytes
/// (Go's archive/tar, hence Docker and BuildKit, writes them so; <c>security.capability</c> is
/// binary). TarReader decodes every PAX value as UTF-8, so a byte that is not valid UTF-8 comes back
/// as U+FFFD, and it splits records at the first <c>'\n'</c> instead of by their length, so a value
/// containing 0x0A makes it reject the whole header (.NET 10: "The extended header contains invalid
/// records").
/// </para>
/// <para>
/// How: this stream follows the tar framing as the bytes pass (512-byte headers, octal or GNU
/// base-256 size fields, the PAX <c>size</c> override, data padded to 512), reads each <c>x</c> and
/// <c>g</c> header's records by their length, removes the xattr records, and hands TarReader the
/// header rewritten (size and checksum fixed) with one <see cref="TokenKey"/> record in their place.
/// The flattener redeems that token from the entry TarReader returns (<see cref="Take"/>), so which
/// entry the xattrs belong to is decided by TarReader itself: it cannot drift whatever TarReader
/// reads ahead or skips, and whether or not the consumer reads an entry's data. The stream reports
/// itself non-seekable, so TarReader reads every byte through it instead of seeking over data.
/// Every other byte passes through unchanged; xattr records in <c>g</c> (global) headers are dropped,
/// as global headers were always ignored.
/// </para>
/// <para>
/// Checks: header checksums are verified (a header that does not add up means the framing was lost
/// or the tar is corrupt: either way nothing is guessed), PAX records must be well formed, and
/// metadata headers are limited to 1 MiB like Go's archive/tar (<c>maxSpecialFileSize</c>). Failures
/// are <see cref="ImageFormatException"/>s that start with the layer label.
/// </para>
/// <para>Does not own <c>inner</c>: disposing this stream leaves it open.</para>
/// </remarks>
internal sealed partial class PaxXattrStream : ReadOnlyStream
{
    /// <summary>Vendor PAX key (POSIX pax "VENDOR.keyword") whose value names a captured xattr set.</summary>
    public const string TokenKey = "MATCHLOCK.xattrs";

    private const int BlockSize = 512;
    private const int MaxMetadataSize = 1 << 20;

    // Header field offsets (POSIX ustar; GNU shares these three).
    private const int SizeOffset = 124;
    private const int SizeLength = 12;
    private const int ChecksumOffset = 148;
    private const int ChecksumLength = 8;
    private const int TypeFlagOffset = 156;

    private readonly Stream _inner;
    private readonly string _layer;
    private readonly byte[] _header = new byte[BlockSize];
    private readonly Dictionary<long, List<Xattr>> _captured = [];
    private long _lastToken;

    private State _state = State.Header;

    // Input being gathered: a header into _header, or an extended header's data (padded) into its own buffer.
    private byte[] _collect;
    private int _collected;
    private int _extendedSize;
    private byte[]? _extendedHeader;
    private long _extendedHeaderOffset;

    // Bytes ready for the consumer (a header, or a rewritten extended header with its data).
    private byte[] _output = [];
    private int _outputPosition;
    private int _outputLength;

    // Entry data (with its padding) still to pass through untouched.
    private long _dataRemaining;

    // The 'size' record of the last 'x' header: it overrides the next header's size field.
    private long? _paxSize;

    // Offset in the layer tar of the next byte read from inner, for messages.
    private long _offset;

    private enum State
    {
        Header,
        ExtendedData,
        Data,
        Ended,
    }

    /// <param name="inner">The uncompressed layer tar.</param>
    /// <param name="layerLabel">Starts every error message, e.g. <c>layer 2 (sha256:…)</c>.</param>
    public PaxXattrStream(Stream inner, string layerLabel)
    {
        _inner = inner;
        _layer = layerLabel;
        _collect = _header;
    }

    /// <summary>
    /// The xattrs captured under <paramref name="token"/> (the entry's <see cref="TokenKey"/> value),
    /// in archive order; each set can be taken once.
    /// </summary>
    public IReadOnlyList<Xattr> Take(string token)
    {
        if (!long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || !_captured.Remove(id, out var xattrs))
        {
            throw new InvalidOperationException($"no captured xattr set \"{token}\" (taken twice, or not from this stream)");
        }

        return xattrs;
    }

    public override int Read(Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            if (_outputPosition < _outputLength)
            {
                return Emit(buffer);
            }

            if (_state is State.Data or State.Ended)
            {
                return PassedThrough(_inner.Read(buffer[..PassThroughLimit(buffer.Length)]));
            }

            if (Collected(_inner.Read(_collect.AsSpan(_collected))))
            {
                return 0;
            }
        }

        return 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            if (_outputPosition < _outputLength)
            {
                return Emit(buffer.Span);
            }

            if (_state is State.Data or State.Ended)
            {
                return PassedThrough(await _inner.ReadAsync(buffer[..PassThroughLimit(buffer.Length)], cancellationToken));
            }

            if (Collected(await _inner.ReadAsync(_collect.AsMemory(_collected), cancellationToken)))
            {
                return 0;
            }
        }

        return 0;
    }

    private int Emit(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, _outputLength - _outputPosition);
        _output.AsSpan(_outputPosition, n).CopyTo(buffer);
        _outputPosition += n;
        if (_outputPosition == _outputLength && _state == State.Header)
        {
            StartHeader();
        }

        return n;
    }

    private int PassThroughLimit(int wanted) =>
        _state == State.Data ? (int)Math.Min(wanted, _dataRemaining) : wanted;

    private int PassedThrough(int n)
    {
        _offset += n;
        if (_state == State.Data)
        {
            // n == 0 here is a truncated tar: TarReader reports it (end of stream inside an entry).
            _dataRemaining -= n;
            if (_dataRemaining == 0)
            {
                StartHeader();
            }
        }

        return n;
    }

    /// <summary>Accounts for <paramref name="n"/> bytes read into <c>_collect</c>; true when the input ended cleanly.</summary>
    private bool Collected(int n)
    {
        if (n == 0)
        {
            if (_state == State.Header && _collected == 0)
            {
                // End of input where a header would start: TarReader decides whether that is acceptable.
                _state = State.Ended;
                return true;
            }

            throw Corrupt(_state == State.Header
                ? $"it ends inside the header at byte {_offset - _collected}"
                : $"it ends inside the PAX extended header at byte {_extendedHeaderOffset}");
        }

        _offset += n;
        _collected += n;
        if (_collected == _collect.Length)
        {
            if (_state == State.Header)
            {
                OnHeader(_offset - BlockSize);
            }
            else
            {
                OnExtendedData();
            }
        }

        return false;
    }

    private void StartHeader()
    {
        _state = State.Header;
        _collect = _header;
        _collected = 0;
    }

    private void OnHeader(long headerOffset)
    {
        var header = _header.AsSpan();
        var checksumField = header.Slice(ChecksumOffset, ChecksumLength);
        if (!checksumField.ContainsAnyExcept((byte)0))
        {
            // The end-of-archive marker (TarReader's test too: an all-NUL checksum field ends the archive).
            EndOfArchive();
            return;
        }

        if (!TryParseOctal(checksumField, out var checksum))
        {
            throw Corrupt($"the header at byte {headerOffset} has an unreadable checksum field");
        }

        if (checksum == 0)
        {
            EndOfArchive();
            return;
        }

        // Unsigned is the standard; some old tars summed signed bytes (GNU tar and Go accept both).
        if (checksum != HeaderChecksum(header, signed: false) && checksum != HeaderChecksum(header, signed: true))
        {
            throw Corrupt($"the header at byte {headerOffset} fails its checksum");
        }

        if (!TryParseSize(header.Slice(SizeOffset, SizeLength), out var size))
        {
            throw Corrupt($"the header at byte {headerOffset} has an invalid size field");
        }

        switch ((char)header[TypeFlagOffset])
        {
            case 'x' or 'g':
                _paxSize = null;
                if (size > MaxMetadataSize)
                {
                    throw TooLarge(headerOffset, size);
                }

                if (size == 0)
                {
                    Output(_header, BlockSize);
                    return;
                }

                _state = State.ExtendedData;
                _extendedHeader = header.ToArray();
                _extendedHeaderOffset = headerOffset;
                _extendedSize = (int)size;
                _collect = new byte[size + Padding(size)];
                _collected = 0;
                return;

            case 'L' or 'K':
                // GNU long name / link target: metadata with a data section (the PAX size never applies).
                _paxSize = null;
                if (size > MaxMetadataSize)
                {
                    throw TooLarge(headerOffset, size);
                }

                StartData(size);
                return;

            case '1' or '2' or '3' or '4' or '5' or '6':
                // Links, devices, directories and FIFOs have no data section (TarReader refuses a size > 0).
                _paxSize = null;
                StartData(0);
                return;

            default:
                // Regular files and anything TarReader treats as having data; the flattener refuses unknown types.
                var dataSize = _paxSize ?? size;
                _paxSize = null;
                StartData(dataSize);
                return;
        }
    }

    private void EndOfArchive()
    {
        // After the marker come more zero blocks and padding: passed through, never parsed.
        _state = State.Ended;
        Output(_header, BlockSize);
    }

    private void StartData(long size)
    {
        Output(_header, BlockSize);
        _dataRemaining = size + Padding(size);
        if (_dataRemaining > 0)
        {
            _state = State.Data;
        }
    }

    private void Output(byte[] bytes, int length)
    {
        _output = bytes;
        _outputPosition = 0;
        _outputLength = length;
    }

    private static long Padding(long size) => (BlockSize - (size % BlockSize)) % BlockSize;

    private static long HeaderChecksum(ReadOnlySpan<byte> header, bool signed)
    {
        long sum = ' ' * ChecksumLength; // the checksum field counts as spaces
        for (var i = 0; i < header.Length; i++)
        {
            if (i is < ChecksumOffset or >= ChecksumOffset + ChecksumLength)
            {
                sum += signed ? (sbyte)header[i] : header[i];
            }
        }

        return sum;
    }

    /// <summary>A numeric header field as TarReader reads it: NUL-terminated, space-trimmed octal.</summary>
    private static bool TryParseOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        var nul = field.IndexOf((byte)0);
        field = (nul >= 0 ? field[..nul] : field).Trim((byte)' ');
        foreach (var b in field)
        {
            var digit = b - '0';
            if (digit is < 0 or > 7 || value > long.MaxValue >> 3)
            {
                return false;
            }

            value = (value << 3) | (uint)digit;
        }

        return true;
    }

    /// <summary>The size field: octal, or GNU base-256 (leading 0x80, big-endian rest) for sizes of 8 GiB and more.</summary>
    private static bool TryParseSize(ReadOnlySpan<byte> field, out long size)
    {
        size = 0;
        switch (field[0])
        {
            case 0x80:
                // Must fit a non-negative long: the first 3 of the 11 value bytes zero, the 4th below 0x80.
                var value = field[1..];
                if (value[..3].ContainsAnyExcept((byte)0) || value[3] >= 0x80)
                {
                    return false;
                }

                size = BinaryPrimitives.ReadInt64BigEndian(value[3..]);
                return true;
            case 0xff:
                return false; // base-256 negative
            default:
                return TryParseOctal(field, out size);
        }
    }

    private ImageFormatException Corrupt(string what) =>
        new($"{_layer}: corrupt or truncated layer tar ({what}); re-export the image and import again");

    private ImageFormatException TooLarge(long headerOffset, long size) =>
        new($"{_layer}: the metadata header at byte {headerOffset} of the layer tar is {size} bytes, over the "
            + $"{MaxMetadataSize >> 20} MiB limit; refusing to import (no real layer has one this large)");
}
