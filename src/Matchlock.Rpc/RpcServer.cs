using System.Collections.Concurrent;
using System.Text.Json;
using Matchlock.Core;
using Matchlock.Rpc.Methods;

namespace Matchlock.Rpc;

/// <summary>
/// <c>matchlock rpc</c>: line-delimited JSON-RPC 2.0 on stdin and stdout (docs/ARCHITECTURE.md
/// D11, contract/rpc.json). One server holds at most one sandbox, which it owns: it is recorded
/// in state and answers <c>matchlock exec/ls/kill</c>; <c>close</c> or the end of stdin stops it.
/// </summary>
/// <remarks>
/// Ordering, as the original: <c>create</c> and <c>close</c> wait for the requests in flight and
/// run alone; <c>cancel</c>, the stdin methods and <c>resize</c> are handled on the reading loop
/// in arrival order; everything else runs concurrently. The stdin methods are never answered,
/// also when they carry an id (the original clients send one and expect no answer).
/// </remarks>
public sealed class RpcServer
{
    private static readonly TimeSpan DefaultCloseTimeout = TimeSpan.FromSeconds(2);

    private readonly LineReader _input;
    private readonly RpcWriter _output;
    private readonly IRpcSandboxFactory _factory;
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _inFlightById = new();
    private readonly ConcurrentDictionary<Task, byte> _inFlight = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly RpcSession _session;

    internal RpcServer(Stream input, Stream output, IRpcSandboxFactory factory)
    {
        _input = new LineReader(input);
        _output = new RpcWriter(output);
        _factory = factory;
        _session = new RpcSession(_output);
    }

    /// <summary>Serves <paramref name="input"/> until <c>close</c>, its end, or <paramref name="stop"/>; then releases the sandbox.</summary>
    public static Task RunAsync(Stream input, Stream output, RpcEnvironment environment, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return new RpcServer(input, output, new OwnedSandboxFactory(environment)).ServeAsync(stop);
    }

    internal async Task ServeAsync(CancellationToken stop)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, _stopping.Token);
        var closeTimeout = DefaultCloseTimeout;
        try
        {
            while (!linked.IsCancellationRequested)
            {
                var (end, line) = await _input.ReadAsync(linked.Token);
                if (end)
                {
                    break; // the client closed stdin (or went away): stop as close would
                }

                if (line is null)
                {
                    await _output.ErrorAsync(null, RpcErrorCodes.ParseError, $"Parse error: a line longer than {LineReader.MaxLine} bytes was skipped");
                    continue;
                }

                if (await DispatchAsync(line) is { } timeout)
                {
                    closeTimeout = timeout;
                    break; // answered close: read no more
                }
            }
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            // Signalled: stop as close would.
        }

        await ShutDownAsync(closeTimeout);
    }

    /// <summary>Handles one line; returns the close timeout when it was <c>close</c>.</summary>
    private async Task<TimeSpan?> DispatchAsync(byte[] line)
    {
        if (line.AsSpan().Trim((byte)' ').Trim((byte)'\r').IsEmpty)
        {
            return null;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            await _output.ErrorAsync(null, RpcErrorCodes.ParseError, "Parse error: the line is not valid JSON");
            return null;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                await _output.ErrorAsync(null, RpcErrorCodes.InvalidRequest, "Invalid Request: expected a JSON object");
                return null;
            }

            JsonElement? id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind is JsonValueKind.Number or JsonValueKind.String
                ? idElement.Clone()
                : null;
            if (!root.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String)
            {
                await _output.ErrorAsync(id, RpcErrorCodes.InvalidRequest, "Invalid Request: \"method\" (a string) is required");
                return null;
            }

            var method = methodElement.GetString()!;
            RpcParams parameters;
            if (root.TryGetProperty("params", out var paramsElement) && paramsElement.ValueKind != JsonValueKind.Null)
            {
                if (paramsElement.ValueKind != JsonValueKind.Object)
                {
                    await AnswerErrorAsync(id, RpcException.InvalidParams("params: expected an object"));
                    return null;
                }

                parameters = new RpcParams(paramsElement.Clone(), "params");
            }
            else
            {
                parameters = RpcParams.Empty;
            }

            return await DispatchAsync(id, method, parameters);
        }
    }

    private async Task<TimeSpan?> DispatchAsync(JsonElement? id, string method, RpcParams parameters)
    {
        switch (method)
        {
            case "create":
                await WaitForInFlightAsync();
                await RunAsync(new RpcCall(id, method, parameters, _stopping.Token), call => _session.CreateAsync(_factory, call));
                return null;

            case "close":
                var timeout = CloseTimeout(parameters);
                await ShutDownAsync(timeout);
                if (id is not null)
                {
                    await _output.ResultAsync(id, _ => { });
                }

                return timeout;

            case "cancel":
                var target = parameters.Has("id") ? CancelKey(parameters) : null;
                var found = target is not null && _inFlightById.TryGetValue(target, out var cts) && TryCancel(cts);
                if (id is not null)
                {
                    await _output.ResultAsync(id, w => w.WriteBoolean("cancelled", found));
                }

                return null;

            case "exec_pipe.stdin" or "exec_tty.stdin" or "exec_pipe.stdin_eof" or "exec_tty.stdin_eof" or "exec_tty.resize":
                _session.Exec.Input(method, parameters); // in arrival order; never answered
                return null;
        }

        if (!RpcSession.Methods.Contains(method))
        {
            if (id is not null)
            {
                await _output.ErrorAsync(id, RpcErrorCodes.MethodNotFound, $"Method not found: {method}");
            }

            return null;
        }

        var cancellation = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        var call = new RpcCall(id, method, parameters, cancellation.Token);
        if (call.Key is { } key && !_inFlightById.TryAdd(key, cancellation))
        {
            cancellation.Dispose();
            await _output.ErrorAsync(id, RpcErrorCodes.InvalidRequest, $"Invalid Request: id {key} is already in use by a request in flight");
            return null;
        }

        var task = Task.Run(async () =>
        {
            try
            {
                await RunAsync(call, c => _session.HandleAsync(c));
            }
            finally
            {
                if (call.Key is { } k)
                {
                    _inFlightById.TryRemove(k, out _);
                }

                cancellation.Dispose();
            }
        });
        _inFlight.TryAdd(task, 0);
        _ = task.ContinueWith(t => _inFlight.TryRemove(t, out _), TaskScheduler.Default);
        return null;
    }

    /// <summary>Runs a handler and answers with its result or the error it ended with.</summary>
    private async Task RunAsync(RpcCall call, Func<RpcCall, Task<Action<System.Text.Json.Utf8JsonWriter>>> handle)
    {
        try
        {
            var result = await handle(call);
            if (call.Id is not null)
            {
                await _output.ResultAsync(call.Id, result);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            await AnswerErrorAsync(call.Id, RpcSession.Translate(ex, call));
        }
    }

    private Task AnswerErrorAsync(JsonElement? id, RpcException error) =>
        id is null ? Task.CompletedTask : _output.ErrorAsync(id, error.Code, error.Message);

    private static string CancelKey(RpcParams parameters)
    {
        var value = parameters.Integer("id");
        return value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static bool TryCancel(CancellationTokenSource cts)
    {
        try
        {
            cts.Cancel();
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false; // it just finished
        }
    }

    private static TimeSpan CloseTimeout(RpcParams parameters)
    {
        try
        {
            return parameters.OptionalNumber("timeout_seconds") is { } seconds && seconds > 0 && seconds < 3600
                ? TimeSpan.FromSeconds(seconds)
                : DefaultCloseTimeout;
        }
        catch (RpcException)
        {
            return DefaultCloseTimeout; // close always closes
        }
    }

    private async Task WaitForInFlightAsync()
    {
        var running = _inFlight.Keys.ToArray();
        if (running.Length > 0)
        {
            await Task.WhenAll(running);
        }
    }

    /// <summary>
    /// Ends the requests in flight (their commands are cancelled in the guest; their answers
    /// still go out, within a second) and stops the sandbox within about <paramref name="timeout"/>:
    /// the original clients wait <c>timeout</c> + 1 s for the answer to <c>close</c>, then kill us.
    /// </summary>
    private async Task ShutDownAsync(TimeSpan timeout)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        var running = _inFlight.Keys.ToArray();
        await Task.WhenAny(Task.WhenAll(running), Task.Delay(TimeSpan.FromSeconds(1)));
        await _session.CloseAsync(timeout);
    }
}
