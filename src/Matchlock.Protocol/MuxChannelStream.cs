namespace Matchlock.Protocol;

/// <summary>Adapts one channel of a <see cref="MuxStream"/> to <see cref="Stream"/> for CopyToAsync and friends.</summary>
internal sealed class MuxChannelStream(MuxStream owner, byte channel, bool canRead) : Stream
{
    private bool _eofSent;

    public override bool CanRead => canRead;

    public override bool CanWrite => !canRead;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        canRead ? owner.ReadAsync(channel, buffer, cancellationToken) : throw new NotSupportedException();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        canRead ? throw new NotSupportedException() : owner.WriteAsync(channel, buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        if (!canRead && !_eofSent)
        {
            _eofSent = true;
            await owner.WriteEofAsync(channel, CancellationToken.None);
        }

        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !canRead && !_eofSent)
        {
            _eofSent = true;
            owner.WriteEofAsync(channel, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }
}
