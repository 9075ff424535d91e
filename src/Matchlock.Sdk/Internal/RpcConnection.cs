using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Text.Json;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// The JSON-RPC 2.0 client side of one <see cref="IRpcChannel"/>: numbers requests, writes each
/// as one line under a lock, and runs one reading loop that routes responses by id and
/// notifications by their <c>params.id</c> (output of a running request) or method (<c>event</c>).
/// </summary>
/// <remarks>
/// Handlers run on the reading loop, so they only hand data over (channels, pipes) and never
/// block. When the server ends, every pending and later request fails with
/// <see cref="MatchlockSandboxException"/> naming what the server last said.
/// </remarks>
internal sealed class RpcConnection : IAsyncDisposable
{
    /// <summary>contract/rpc.json "max_line_bytes".</summary>
    public const int MaxLine = 10 * 1024 * 1024;

    private readonly IRpcChannel _channel;
    private readonly SemaphoreSlim _writeLock = new(1, 1); // guards _channel.Input: lines never interleave
    private readonly ConcurrentDictionary<long, PendingCall> _pending = new();
    private readonly Task _reading;
    private long _lastId;
    private volatile Exception? _ended; // set once the reading loop stopped; later calls fail with it

    public RpcConnection(IRpcChannel channel, Action<JsonElement>? onEvent)
    {
        _channel = channel;
        OnEvent = onEvent;
        _reading = Task.Run(ReadLoopAsync);
    }

    /// <summary>Receives the params of every <c>event</c> notification.</summary>
    public Action<JsonElement>? OnEvent { get; set; }

    public IRpcChannel Channel => _channel;

    /// <summary>Completes when the server's output has ended.</summary>
    public Task Reading => _reading;

    /// <summary>Sends a request and waits for its result; cancelling sends <c>cancel {id}</c> and throws.</summary>
    public async Task<JsonElement> CallAsync(string method, Action<Utf8JsonWriter>? writeParams, CancellationToken cancellationToken, Action<string, JsonElement>? onNotification = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var call = await StartAsync(method, writeParams, onNotification, cancellationToken);
        return await WaitAsync(call, cancellationToken);
    }

    /// <summary>Sends a request whose answer is awaited later with <see cref="WaitAsync"/>.</summary>
    public async Task<PendingCall> StartAsync(string method, Action<Utf8JsonWriter>? writeParams, Action<string, JsonElement>? onNotification, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _lastId);
        var call = new PendingCall(id, method, onNotification);
        _pending[id] = call; // before the write: a fast answer must find it
        try
        {
            ThrowIfEnded();
            await WriteAsync(Serialize(id, method, writeParams), cancellationToken);
        }
        catch
        {
            _pending.TryRemove(id, out _);
            throw;
        }

        return call;
    }

    /// <summary>The result of <paramref name="call"/>; cancelling sends <c>cancel {id}</c> and throws at once.</summary>
    public async Task<JsonElement> WaitAsync(PendingCall call, CancellationToken cancellationToken)
    {
        try
        {
            return await call.Result.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !call.Result.IsCompleted)
        {
            await CancelAsync(call);
            throw;
        }
    }

    /// <summary>
    /// Stops waiting for <paramref name="call"/> and asks the server to cancel it. Its late answer
    /// and output are dropped; the answer to <c>cancel</c> itself is never awaited (the original
    /// clients ignore it too).
    /// </summary>
    public async Task CancelAsync(PendingCall call)
    {
        if (!_pending.TryRemove(call.Id, out _) || _ended is not null)
        {
            return; // already answered, or nobody is left to tell
        }

        call.Abandon();
        try
        {
            await SendAsync("cancel", w => w.WriteNumber("id", call.Id), CancellationToken.None);
        }
        catch (MatchlockSandboxException)
        {
            // The server went away while we cancelled: the request is gone with it.
        }
    }

    /// <summary>
    /// Sends a request nobody waits an answer for (stdin, stdin EOF, resize, cancel). It still
    /// carries an id, as the original clients' do; the server never answers these.
    /// </summary>
    public Task SendAsync(string method, Action<Utf8JsonWriter>? writeParams, CancellationToken cancellationToken)
    {
        ThrowIfEnded();
        var id = Interlocked.Increment(ref _lastId);
        return WriteAsync(Serialize(id, method, writeParams), cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await _reading;
        _writeLock.Dispose();
    }

    private static byte[] Serialize(long id, string method, Action<Utf8JsonWriter>? writeParams)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WriteNumber("id", id);
            w.WriteString("method", method);
            w.WritePropertyName("params");
            w.WriteStartObject();
            writeParams?.Invoke(w);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private async Task WriteAsync(byte[] line, CancellationToken cancellationToken)
    {
        // The token may stop the wait for the lock, never a write half done: half a line would
        // corrupt every request after it.
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            ThrowIfEnded();
            await _channel.Input.WriteAsync(line, CancellationToken.None);
            await _channel.Input.FlushAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            throw Gone(ex);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void ThrowIfEnded()
    {
        if (_ended is { } ended)
        {
            throw new MatchlockSandboxException(ended.Message, ended);
        }
    }

    private MatchlockSandboxException Gone(Exception? cause)
    {
        var diagnostics = _channel.Diagnostics;
        var message = "the matchlock rpc server has ended" + (diagnostics.Length > 0 ? $": {diagnostics}" : "; its stderr said nothing");
        return new MatchlockSandboxException(message, cause);
    }

    private async Task ReadLoopAsync()
    {
        var reader = _channel.Output;
        Exception? failure = null;
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync();
                var buffer = read.Buffer;
                while (buffer.PositionOf((byte)'\n') is { } newline)
                {
                    Dispatch(buffer.Slice(0, newline));
                    buffer = buffer.Slice(buffer.GetPosition(1, newline));
                }

                if (buffer.Length > MaxLine)
                {
                    throw new InvalidDataException($"the server wrote a line longer than {MaxLine} bytes");
                }

                if (read.IsCompleted)
                {
                    if (!buffer.IsEmpty)
                    {
                        Dispatch(buffer); // a last line without its newline
                    }

                    reader.AdvanceTo(buffer.End);
                    break;
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or ObjectDisposedException or InvalidOperationException)
        {
            failure = ex;
        }

        await reader.CompleteAsync();

        // Wait briefly for the server to finish so its last words (stderr) make it into the message.
        await Task.WhenAny(_channel.Exited, Task.Delay(TimeSpan.FromMilliseconds(500)));
        var gone = Gone(failure);
        _ended = gone;
        foreach (var id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out var call))
            {
                call.Fail(gone);
            }
        }
    }

    private void Dispatch(ReadOnlySequence<byte> line)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(line);
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            // The server promises JSON lines only; a blank or foreign line cannot be routed, and
            // failing the whole session over it would lose every request in flight.
            return;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            if (root.TryGetProperty("method", out var method) && method.ValueKind == JsonValueKind.String)
            {
                DispatchNotification(method.GetString()!, root.TryGetProperty("params", out var p) ? p : default);
                return;
            }

            if (!root.TryGetProperty("id", out var idElement) || idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt64(out var id) || !_pending.TryRemove(id, out var call))
            {
                return; // an answer to a cancelled or unanswered request (cancel, stdin), or to a parse error
            }

            if (root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                var code = error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.Number && c.TryGetInt32(out var n) ? n : MatchlockRpcException.InternalError;
                var message = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "(no message)";
                call.Fail(MatchlockRpcException.FromError(code, $"{call.Method}: {message}"));
            }
            else
            {
                call.Complete(root.TryGetProperty("result", out var result) ? result.Clone() : default);
            }
        }
    }

    private void DispatchNotification(string method, JsonElement parameters)
    {
        if (parameters.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        if (method == "event")
        {
            OnEvent?.Invoke(parameters);
            return;
        }

        if (parameters.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.Number && idElement.TryGetInt64(out var id) && _pending.TryGetValue(id, out var call))
        {
            call.Notify(method, parameters);
        }
    }
}

/// <summary>A request sent and not yet answered.</summary>
internal sealed class PendingCall(long id, string method, Action<string, JsonElement>? onNotification)
{
    private readonly TaskCompletionSource<JsonElement> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Action<string, JsonElement>? _onNotification = onNotification;

    public long Id { get; } = id;

    public string Method { get; } = method;

    public Task<JsonElement> Result => _result.Task;

    public void Notify(string method, JsonElement parameters) => _onNotification?.Invoke(method, parameters);

    public void Complete(JsonElement result) => _result.TrySetResult(result);

    public void Fail(Exception error) => _result.TrySetException(error);

    /// <summary>Output that still arrives for a cancelled request goes nowhere.</summary>
    public void Abandon() => _onNotification = null;
}
