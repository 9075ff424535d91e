namespace Matchlock.Core.Images;

/// <summary>
/// Supplies a tar's end-of-archive marker (two zero blocks) when the archive ends cleanly on a
/// block boundary without one. GNU tar, Python and Go's archive/tar (so Docker) accept such
/// archives, and real layers are written that way (seen: a umoci-built layer exported by skopeo);
/// System.Formats.Tar throws <see cref="EndOfStreamException"/> on them instead.
/// </summary>
/// <remarks>
/// Does not own <c>inner</c>. A layer cut short at a block boundary looks the same from here; it is still refused, because
/// its diff id is hashed below this wrapper, over the real bytes only.
/// </remarks>
internal sealed class TarEndMarkerStream(Stream inner) : ReadOnlyStream
{
    private const int Block = 512;
    private long _position;
    private int _markerLeft = -1; // -1: not supplied; then the zero bytes still to hand out

    public override int Read(Span<byte> buffer) =>
        _markerLeft >= 0 || buffer.IsEmpty ? Supply(buffer) : Account(buffer, inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_markerLeft >= 0 || buffer.IsEmpty)
        {
            return Supply(buffer.Span);
        }

        var read = await inner.ReadAsync(buffer, cancellationToken);
        return Account(buffer.Span, read);
    }

    private int Account(Span<byte> buffer, int read)
    {
        if (read > 0)
        {
            _position += read;
            return read;
        }

        // The real end. On a block boundary it can only be a missing marker (or a cut the digest
        // check will catch); elsewhere it is truncation, which the tar reader reports.
        if (_position % Block == 0)
        {
            _markerLeft = 2 * Block;
            return Supply(buffer);
        }

        return 0;
    }

    private int Supply(Span<byte> buffer)
    {
        var n = Math.Max(0, Math.Min(buffer.Length, _markerLeft));
        buffer[..n].Clear();
        _markerLeft -= n;
        return n;
    }
}
