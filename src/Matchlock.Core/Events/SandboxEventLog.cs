using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;

namespace Matchlock.Core.Events;

/// <summary>
/// One event of a sandbox: a decision of the sealed network or an operation on a VFS mount. Each
/// kind writes itself as one JSON object (with its <see cref="Type"/>) into <c>events.jsonl</c>.
/// </summary>
public abstract record LoggedEvent
{
    public required DateTimeOffset Time { get; init; }

    /// <summary>"network" or "file": the first field of the event's line in <c>events.jsonl</c>.</summary>
    public abstract string Type { get; }

    /// <summary>The event as one JSON object (no newline).</summary>
    internal abstract void WriteJson(Utf8JsonWriter writer);
}

/// <summary>
/// Where a sandbox's events go (docs/NETWORK.md, docs/VFS.md): optionally a JSON-lines file
/// (<c>events.jsonl</c> in the VM directory), and any number of in-memory subscribers (callbacks or
/// <see cref="ReadAllAsync"/> streams, for the rpc server and the SDK). Publishing never blocks
/// the request path: file lines are queued and written by one background writer. The queue is
/// bounded (a guest can cause file events as fast as it can call stat); what does not fit is
/// counted and the count written as a <c>{"type":"dropped"}</c> line once the writer catches up.
/// </summary>
public sealed class SandboxEventLog : IAsyncDisposable
{
    /// <summary>Lines the file queue holds before it drops (a few MB of events).</summary>
    internal const int FileQueueCapacity = 65_536;

    private readonly Channel<LoggedEvent> _fileQueue = Channel.CreateBounded<LoggedEvent>(
        new BoundedChannelOptions(FileQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly Task _writer;

    // Lines are read by people and by jq, not embedded in HTML: quotes and apostrophes stay as they are
    // (control characters and invalid UTF-16 from guest-chosen names are still escaped).
    private static readonly JsonWriterOptions LineOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // Guards _subscribers (copy-on-write array, so Publish reads it without the lock).
    private readonly Lock _gate = new();
    private Action<LoggedEvent>[] _subscribers = [];
    private long _dropped;

    /// <param name="jsonLinesPath">File to append one JSON object per line to (created at the first event); null for in-memory only.</param>
    public SandboxEventLog(string? jsonLinesPath = null)
    {
        FilePath = jsonLinesPath;
        _writer = jsonLinesPath is null ? Task.CompletedTask : Task.Run(() => WriteFileAsync(jsonLinesPath));
    }

    public string? FilePath { get; }

    /// <summary>Events the file could not take because its queue was full, not yet reported in the file.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Publish(LoggedEvent loggedEvent)
    {
        ArgumentNullException.ThrowIfNull(loggedEvent);
        if (FilePath is not null && !_fileQueue.Writer.TryWrite(loggedEvent))
        {
            Interlocked.Increment(ref _dropped);
        }

        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber(loggedEvent);
        }
    }

    /// <summary>Calls <paramref name="callback"/> for every event from now on (on the publishing thread; keep it quick) until disposed.</summary>
    public IDisposable Subscribe(Action<LoggedEvent> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_gate)
        {
            _subscribers = [.. _subscribers, callback];
        }

        return new Subscription(this, callback);
    }

    /// <summary>Every event from now on, until <paramref name="cancellationToken"/> fires.</summary>
    public async IAsyncEnumerable<LoggedEvent> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<LoggedEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = Subscribe(e => channel.Writer.TryWrite(e));
        while (true)
        {
            LoggedEvent next;
            try
            {
                next = await channel.Reader.ReadAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                yield break;
            }

            yield return next;
        }
    }

    /// <summary>Flushes the file and stops writing.</summary>
    public async ValueTask DisposeAsync()
    {
        _fileQueue.Writer.TryComplete();
        await _writer;
    }

    private async Task WriteFileAsync(string path)
    {
        var reader = _fileQueue.Reader;
        FileStream? stream = null;
        try
        {
            var buffer = new ArrayBufferWriter<byte>(4096);
            while (await reader.WaitToReadAsync())
            {
                // Opened at the first event: a sandbox that never has one leaves no empty file.
                stream ??= new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, 4096, useAsync: true);
                buffer.Clear();
                using (var json = new Utf8JsonWriter(buffer, LineOptions))
                {
                    while (reader.TryRead(out var e))
                    {
                        e.WriteJson(json);
                        json.Flush();
                        buffer.Write("\n"u8);
                        json.Reset(buffer);
                    }

                    var dropped = Interlocked.Exchange(ref _dropped, 0);
                    if (dropped > 0)
                    {
                        json.WriteStartObject();
                        json.WriteString("type", "dropped");
                        json.WriteNumber("count", dropped);
                        json.WriteEndObject();
                        json.Flush();
                        buffer.Write("\n"u8);
                    }
                }

                // One write and a flush per batch, so `tail -f` and a crash both see what happened.
                await stream.WriteAsync(buffer.WrittenMemory);
                await stream.FlushAsync();
            }
        }
        finally
        {
            if (stream is not null)
            {
                await stream.DisposeAsync();
            }
        }
    }

    private void Unsubscribe(Action<LoggedEvent> callback)
    {
        lock (_gate)
        {
            _subscribers = _subscribers.Where(s => s != callback).ToArray();
        }
    }

    private sealed class Subscription(SandboxEventLog log, Action<LoggedEvent> callback) : IDisposable
    {
        public void Dispose() => log.Unsubscribe(callback);
    }
}
