using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Matchlock.Sdk.Tests;

/// <summary>
/// A scripted <c>matchlock rpc</c> in memory, reached through the SDK's own in-memory transport.
/// Each test sets handlers per method; every request line is recorded and checked against
/// contract/rpc.json as it arrives (<see cref="Violations"/>), so every test is also a
/// conformance test of what it made the SDK send.
/// </summary>
internal sealed class FakeServer
{
    private static readonly HashSet<string> InlineMethods = ["cancel", "exec_pipe.stdin", "exec_pipe.stdin_eof", "exec_tty.stdin", "exec_tty.stdin_eof", "exec_tty.resize"];

    private readonly ConcurrentDictionary<string, Func<FakeCall, Task>> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, CancellationTokenSource> _running = new();
    private readonly ConcurrentDictionary<long, Channel<FakeCall>> _inputs = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentQueue<FakeCall> _requests = new();
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _crash = new();
    private string _crashReason = "";
    private Stream? _output;

    public FakeServer()
    {
        On("create", call => call.ResultAsync("""{"id":"vm-0000beef"}"""));
        On("close", async call =>
        {
            await call.ResultAsync("{}");
            StopAfterClose = true;
        });
        On("cancel", async call =>
        {
            var target = call.Params.GetProperty("id").GetInt64();
            var found = _running.TryGetValue(target, out var cts);
            cts?.Cancel();
            await call.ResultAsync(found ? """{"cancelled":true}""" : """{"cancelled":false}""");
        });
        foreach (var method in InlineMethods.Where(m => m != "cancel"))
        {
            On(method, call =>
            {
                InputFor(call.Params.GetProperty("id").GetInt64()).Writer.TryWrite(call);
                return Task.CompletedTask;
            });
        }
    }

    /// <summary>Every request received, in arrival order.</summary>
    public IReadOnlyList<FakeCall> Requests => _requests.ToArray();

    /// <summary>Contract violations in the received requests (empty when the SDK conforms).</summary>
    public IReadOnlyList<string> Violations => _violations.ToArray();

    /// <summary>Set by the close handler: the serve loop ends after answering.</summary>
    public bool StopAfterClose { get; set; }

    /// <summary>Keep serving after the client closed our input (to test the kill).</summary>
    public bool IgnoreInputEnd { get; set; }

    /// <summary>Completes when the serve loop ended, with whether it was killed (its stop token fired).</summary>
    public Task Stopped => _stopped.Task;

    public bool Killed { get; private set; }

    /// <summary>Dies like a crashed process: stops reading, ends its output, and says <paramref name="why"/>.</summary>
    public async Task CrashAsync(string why)
    {
        _crashReason = why;
        await _crash.CancelAsync();
        await Stopped;
    }

    public MatchlockClientOptions ClientOptions(TimeSpan? closeTimeout = null) => new()
    {
        Transport = MatchlockTransport.InMemory(ServeAsync),
        CloseTimeout = closeTimeout ?? TimeSpan.FromSeconds(2),
    };

    public FakeServer On(string method, Func<FakeCall, Task> handler)
    {
        _handlers[method] = handler;
        return this;
    }

    public IEnumerable<FakeCall> Calls(string method) => Requests.Where(r => r.Method == method);

    public FakeCall Single(string method) => Assert.Single(Calls(method));

    /// <summary>The stdin, EOF and resize requests sent for request <paramref name="id"/>, in order.</summary>
    public Channel<FakeCall> InputFor(long id) => _inputs.GetOrAdd(id, _ => Channel.CreateUnbounded<FakeCall>());

    public void AssertConforms() => Assert.True(_violations.IsEmpty, "requests that break contract/rpc.json:\n" + string.Join("\n", _violations));

    public Task NotifyAsync(string method, string paramsJson) =>
        WriteLineAsync($$"""{"jsonrpc":"2.0","method":"{{method}}","params":{{paramsJson}}}""");

    public async Task WriteLineAsync(string json)
    {
        await _writeLock.WaitAsync();
        try
        {
            await _output!.WriteAsync(Encoding.UTF8.GetBytes(json + "\n"));
            await _output.FlushAsync();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ServeAsync(Stream input, Stream output, CancellationToken stop)
    {
        _output = output;
        var reader = PipeReader.Create(input);
        using var readCancel = CancellationTokenSource.CreateLinkedTokenSource(stop, _crash.Token);
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(readCancel.Token);
                var buffer = read.Buffer;
                while (buffer.PositionOf((byte)'\n') is { } newline)
                {
                    await HandleLineAsync(Encoding.UTF8.GetString(buffer.Slice(0, newline)), stop);
                    buffer = buffer.Slice(buffer.GetPosition(1, newline));
                    if (StopAfterClose)
                    {
                        return;
                    }
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    if (IgnoreInputEnd)
                    {
                        await Task.Delay(Timeout.Infinite, stop);
                    }

                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Killed = true;
        }
        catch (OperationCanceledException) when (_crash.IsCancellationRequested)
        {
            throw new IOException(_crashReason);
        }
        finally
        {
            foreach (var cts in _running.Values)
            {
                await cts.CancelAsync();
            }

            _stopped.TrySetResult();
        }
    }

    private async Task HandleLineAsync(string line, CancellationToken stop)
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement.Clone();
        foreach (var violation in ContractChecker.Shared.CheckRequest(root))
        {
            _violations.Enqueue($"{violation} in {line}");
        }

        var call = new FakeCall(this, root, line);
        _requests.Enqueue(call);
        if (!_handlers.TryGetValue(call.Method, out var handler))
        {
            handler = c => c.ErrorAsync(-32601, $"Method not found: {c.Method}");
        }

        if (InlineMethods.Contains(call.Method))
        {
            await handler(call); // in arrival order, as the real server
            return;
        }

        var cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        call.Cancelled = cts.Token;
        _running[call.Id] = cts;
        _ = Task.Run(async () =>
        {
            try
            {
                await handler(call);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                if (!stop.IsCancellationRequested && !_crash.IsCancellationRequested)
                {
                    await call.ErrorAsync(-32003, $"{call.Method} was cancelled");
                }
            }
            finally
            {
                _running.TryRemove(call.Id, out _);
            }
        });
    }
}

/// <summary>One request the fake received, and the means to answer it.</summary>
internal sealed class FakeCall(FakeServer server, JsonElement root, string line)
{
    public JsonElement Root { get; } = root;

    public string Line { get; } = line;

    public long Id { get; } = root.GetProperty("id").GetInt64();

    public string Method { get; } = root.GetProperty("method").GetString()!;

    public JsonElement Params { get; } = root.TryGetProperty("params", out var p) ? p : default;

    /// <summary>Fires when the client sent <c>cancel</c> for this request (or the server stops).</summary>
    public CancellationToken Cancelled { get; set; }

    public FakeServer Server => server;

    public Task ResultAsync(string resultJson) =>
        server.WriteLineAsync($$"""{"jsonrpc":"2.0","id":{{Id}},"result":{{resultJson}}}""");

    public Task ErrorAsync(int code, string message) =>
        server.WriteLineAsync($$$"""{"jsonrpc":"2.0","id":{{{Id}}},"error":{"code":{{{code}}},"message":{{{JsonSerializer.Serialize(message)}}}}}""");

    /// <summary>An output notification for this request: <c>{id, data}</c> with <paramref name="data"/> in base64.</summary>
    public Task DataAsync(string method, byte[] data) =>
        server.NotifyAsync(method, $$"""{"id":{{Id}},"data":"{{Convert.ToBase64String(data)}}"}""");

    public Task NotifyAsync(string method) => server.NotifyAsync(method, $$"""{"id":{{Id}}}""");
}
