using System.Text.Json;
using System.Threading.Channels;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// Where proxy events go: optionally a JSON-lines file, and any number of in-memory subscribers
/// (callbacks or <see cref="ReadAllAsync"/> streams, for the SDK). Publishing never blocks the
/// request path: events are queued and written by one background writer.
/// </summary>
public sealed class NetworkEventLog : IAsyncDisposable
{
    private readonly Channel<NetworkEvent> _fileQueue = Channel.CreateUnbounded<NetworkEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    // Guards _subscribers (copy-on-write array, so Publish reads it without the lock).
    private readonly Lock _gate = new();
    private Action<NetworkEvent>[] _subscribers = [];

    /// <param name="jsonLinesPath">File to append one JSON object per line to; null for in-memory only.</param>
    public NetworkEventLog(string? jsonLinesPath = null)
    {
        FilePath = jsonLinesPath;
        _writer = jsonLinesPath is null ? Task.CompletedTask : Task.Run(() => WriteFileAsync(jsonLinesPath));
    }

    public string? FilePath { get; }

    public void Publish(NetworkEvent networkEvent)
    {
        ArgumentNullException.ThrowIfNull(networkEvent);
        if (FilePath is not null)
        {
            _fileQueue.Writer.TryWrite(networkEvent);
        }

        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber(networkEvent);
        }
    }

    /// <summary>Calls <paramref name="callback"/> for every event from now on (on the publishing thread; keep it quick) until disposed.</summary>
    public IDisposable Subscribe(Action<NetworkEvent> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_gate)
        {
            _subscribers = [.. _subscribers, callback];
        }

        return new Subscription(this, callback);
    }

    /// <summary>Every event from now on, until <paramref name="cancellationToken"/> fires.</summary>
    public async IAsyncEnumerable<NetworkEvent> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<NetworkEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = Subscribe(e => channel.Writer.TryWrite(e));
        while (true)
        {
            NetworkEvent next;
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
        await using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, 4096, useAsync: true);
        var newline = "\n"u8.ToArray();
        var reader = _fileQueue.Reader;
        while (await reader.WaitToReadAsync())
        {
            while (reader.TryRead(out var e))
            {
                await JsonSerializer.SerializeAsync(stream, e, NetworkEventJsonContext.Default.NetworkEvent);
                await stream.WriteAsync(newline);
            }

            // Flush per batch so `tail -f` and a crash both see what happened.
            await stream.FlushAsync();
        }
    }

    private void Unsubscribe(Action<NetworkEvent> callback)
    {
        lock (_gate)
        {
            _subscribers = _subscribers.Where(s => s != callback).ToArray();
        }
    }

    private sealed class Subscription(NetworkEventLog log, Action<NetworkEvent> callback) : IDisposable
    {
        public void Dispose() => log.Unsubscribe(callback);
    }
}
