using Matchlock.Core.Images;

namespace Matchlock.Core.Tests.Images;

/// <summary>
/// A non-seekable read-only stream over bytes that returns at most <c>maxRead</c> bytes per read: a
/// pipe or decompressor delivering data in arbitrary pieces.
/// </summary>
internal sealed class TrickleStream(byte[] data, int maxRead) : ReadOnlyStream
{
    private int _position;

    public override int Read(Span<byte> buffer)
    {
        var n = Math.Min(Math.Min(buffer.Length, maxRead), data.Length - _position);
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));
}
