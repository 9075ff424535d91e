namespace Matchlock.Core.Images;

/// <summary>
/// One blob being downloaded into a file that can be read while it grows: layers download
/// concurrently into staging files, and the flattener, which must apply layers in order, reads
/// each one from its file as the bytes arrive instead of waiting for the download to finish.
/// </summary>
/// <remarks>
/// The writer uses an unbuffered file, so every byte counted in <see cref="Written"/> is already in
/// the page cache and visible to readers that opened the same path. Readers see the end of the
/// stream only once the whole blob arrived and the source stream verified its digest; a failed
/// download fails its readers with the same exception.
/// </remarks>
internal sealed class BlobDownload
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = NewSignal();
    private long _written;
    private bool _completed;
    private Exception? _failure;

    public BlobDownload(string path)
    {
        Path = path;
        // Created up front so readers can open it before the first byte arrives.
        using (File.Create(path))
        {
        }
    }

    public string Path { get; }

    public long Written
    {
        get
        {
            lock (_gate)
            {
                return _written;
            }
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> (which verifies size and digest as it reaches its end)
    /// into the file, reporting the running byte count to <paramref name="progress"/>.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task<Stream>> open, Action<long>? progress, CancellationToken cancellationToken)
    {
        try
        {
            await using var source = await open(cancellationToken);
            await using var file = new FileStream(Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0, useAsync: false);
            var buffer = new byte[1 << 18];
            long total = 0;
            while (true)
            {
                var n = await source.ReadAsync(buffer, cancellationToken);
                if (n == 0)
                {
                    break;
                }

                await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                total += n;
                Signal(total, completed: false, failure: null);
                progress?.Invoke(total);
            }

            Signal(total, completed: true, failure: null);
        }
        catch (Exception e)
        {
            Signal(Written, completed: false, failure: e);
            throw;
        }
    }

    /// <summary>A reader that follows the file as it grows and ends where the verified blob ends.</summary>
    public Stream OpenReader() => new FollowingStream(this);

    private void Signal(long written, bool completed, Exception? failure)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _written = written;
            _completed |= completed;
            _failure ??= failure;
            changed = _changed;
            _changed = NewSignal();
        }

        changed.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How far a reader at <paramref name="position"/> may read now, or a task to wait on.</summary>
    private (long Available, bool Ended, Task Changed) State(long position)
    {
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw new IOException($"download of {System.IO.Path.GetFileName(Path)} failed: {_failure.Message}", _failure);
            }

            return (_written - position, _completed && position >= _written, _changed.Task);
        }
    }

    private sealed class FollowingStream(BlobDownload download) : ReadOnlyStream
    {
        private readonly FileStream _file = new(download.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, useAsync: false);
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            while (true)
            {
                var (available, ended, changed) = download.State(_position);
                if (available > 0)
                {
                    var n = _file.Read(buffer[..(int)Math.Min(buffer.Length, available)]);
                    _position += n;
                    return n;
                }

                if (ended || buffer.IsEmpty)
                {
                    return 0;
                }

                changed.Wait();
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var (available, ended, changed) = download.State(_position);
                if (available > 0)
                {
                    var n = await _file.ReadAsync(buffer[..(int)Math.Min(buffer.Length, available)], cancellationToken);
                    _position += n;
                    return n;
                }

                if (ended || buffer.IsEmpty)
                {
                    return 0;
                }

                await changed.WaitAsync(cancellationToken);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _file.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
