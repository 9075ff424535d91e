namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>command.log</c> in the VM directory: the output of the command a long-lived <c>run</c>
/// (<c>-d</c> or <c>--rm=false</c>) started, stdout and stderr interleaved as they came, which
/// <c>matchlock log ID</c> prints (docs/COMPATIBILITY.md "CLI"). In the foreground the command's
/// output also reaches the terminal: <see cref="Tee"/>.
/// </summary>
internal static class CommandLog
{
    public const string FileName = "command.log";

    /// <summary>Opens the log of the sandbox in <paramref name="vmDir"/> for appending, unbuffered (readers follow it).</summary>
    public static FileStream Open(string vmDir) =>
        new(Path.Combine(vmDir, FileName), FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);

    /// <summary>A stream that writes to <paramref name="primary"/> and copies to <paramref name="log"/> (whose failures are ignored: the terminal matters more).</summary>
    public static Stream Tee(Stream primary, Stream log) => new TeeStream(primary, log);

    private sealed class TeeStream(Stream primary, Stream log) : Stream
    {
        private readonly Lock _logLock = new();
        private bool _logFailed;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count)
        {
            primary.Write(buffer, offset, count);
            CopyToLog(buffer.AsSpan(offset, count));
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await primary.WriteAsync(buffer, cancellationToken);
            CopyToLog(buffer.Span);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => primary.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => primary.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private void CopyToLog(ReadOnlySpan<byte> data)
        {
            // stdout and stderr share the log: one write at a time, so their chunks do not interleave mid-write.
            lock (_logLock)
            {
                if (_logFailed)
                {
                    return;
                }

                try
                {
                    log.Write(data);
                }
                catch (IOException)
                {
                    _logFailed = true; // e.g. the disk is full: the command's output still reaches the terminal
                }
            }
        }
    }
}
