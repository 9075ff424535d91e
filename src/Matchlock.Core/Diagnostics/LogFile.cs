using System.Text;

namespace Matchlock.Core.Diagnostics;

/// <summary>
/// A bounded log file (<c>owner.log</c> in a long-lived sandbox's VM directory): when it would
/// pass <see cref="MaxBytes"/> it is renamed to <c>NAME.1</c> (replacing the previous one) and
/// started again, so it never holds more than twice that. Lines written before the file is known
/// (the VM directory exists only once the sandbox is created) are kept — at most
/// <see cref="MaxPending"/> — and written when <see cref="Open"/> names it. Thread-safe.
/// </summary>
public sealed class LogFile : IDisposable
{
    /// <summary>Lines kept before <see cref="Open"/>; older ones are dropped (and counted).</summary>
    public const int MaxPending = 512;

    private readonly Lock _gate = new(); // guards everything below
    private readonly Queue<string> _pending = new();
    private int _dropped;
    private string? _path;
    private FileStream? _stream;

    public LogFile(long maxBytes = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 4096);
        MaxBytes = maxBytes;
    }

    public long MaxBytes { get; }

    /// <summary>Starts writing to <paramref name="path"/> (mode 0600), pending lines first.</summary>
    public void Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        lock (_gate)
        {
            _path = path;
            _stream = OpenStream(path);
            if (_dropped > 0)
            {
                WriteLocked($"({_dropped} earlier lines were dropped before the log file was opened)");
            }

            while (_pending.TryDequeue(out var line))
            {
                WriteLocked(line);
            }
        }
    }

    /// <summary>Appends one line (a logger sink).</summary>
    public void Write(string line)
    {
        lock (_gate)
        {
            if (_stream is null)
            {
                if (_pending.Count == MaxPending)
                {
                    _pending.Dequeue();
                    _dropped++;
                }

                _pending.Enqueue(line);
                return;
            }

            WriteLocked(line);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stream?.Dispose();
            _stream = null;
        }
    }

    private void WriteLocked(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        if (_stream!.Length > 0 && _stream.Length + bytes.Length > MaxBytes)
        {
            _stream.Dispose();
            File.Move(_path!, _path + ".1", overwrite: true);
            _stream = OpenStream(_path!);
        }

        try
        {
            _stream.Write(bytes);
            _stream.Flush();
        }
        catch (IOException)
        {
            // A full disk must not take the owner down with its log; the line is lost.
        }
    }

    private static FileStream OpenStream(string path) => new(path, new FileStreamOptions
    {
        Mode = FileMode.Append,
        Access = FileAccess.Write,
        Share = FileShare.Read,
        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
    });
}
