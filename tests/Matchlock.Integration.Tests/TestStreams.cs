using System.Security.Cryptography;
using System.Text;

namespace Matchlock.Integration.Tests;

/// <summary>Hashes what is written to it, without keeping it.</summary>
internal sealed class HashingStream(IncrementalHash hash) : Stream
{
    private long _length;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count)
    {
        hash.AppendData(buffer, offset, count);
        _length += count;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>Keeps what is written and completes a task once a marker has appeared.</summary>
internal sealed class SignalingStream(string marker, TaskCompletionSource seen) : Stream
{
    private readonly StringBuilder _text = new();
    private readonly Lock _lock = new(); // guards _text

    public string Text
    {
        get
        {
            lock (_lock)
            {
                return _text.ToString();
            }
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count)
    {
        lock (_lock)
        {
            _text.Append(Encoding.UTF8.GetString(buffer, offset, count));
            if (_text.ToString().Contains(marker, StringComparison.Ordinal))
            {
                seen.TrySetResult();
            }
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
