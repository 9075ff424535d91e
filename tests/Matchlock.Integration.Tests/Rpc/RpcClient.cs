using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Matchlock.Integration.Tests.Rpc;

/// <summary>A bare JSON-RPC client of a real <c>matchlock rpc</c> process (the test's view of the wire).</summary>
internal sealed class RpcClient : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    private readonly Process _process;
    private readonly Task<string> _stderr;
    private readonly Dictionary<long, JsonElement> _early = [];
    private long _nextId = 100;

    public RpcClient(MatchlockHome home)
    {
        _process = home.Start(["rpc"]);
        _stderr = _process.StandardError.ReadToEndAsync();
    }

    public Process Process => _process;

    public List<JsonElement> Notifications { get; } = [];

    /// <summary>Whether the answer to <paramref name="id"/> was read while waiting for another one.</summary>
    public bool AnsweredEarly(long id) => _early.ContainsKey(id);

    public async Task SendAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    public async Task<long> SendAsync(string method, object? parameters)
    {
        var id = Interlocked.Increment(ref _nextId);
        await SendAsync(JsonSerializer.Serialize(new Dictionary<string, object?> { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters }));
        return id;
    }

    /// <summary>Reads until the answer to <paramref name="id"/>; notifications read on the way are kept in <see cref="Notifications"/>, other requests' answers for their own call.</summary>
    public async Task<JsonElement> AnswerAsync(long id, TimeSpan? bound = null)
    {
        if (_early.Remove(id, out var early))
        {
            return early;
        }

        using var cts = new CancellationTokenSource(bound ?? Bound);
        while (true)
        {
            string? line;
            try
            {
                line = await _process.StandardOutput.ReadLineAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no answer to request {id} within {(bound ?? Bound).TotalSeconds} s; stderr so far is not available until exit");
            }

            if (line is null)
            {
                throw new EndOfStreamException($"matchlock rpc ended before answering {id}; stderr: {await _stderr}");
            }

            var message = JsonDocument.Parse(line).RootElement.Clone();
            if (message.TryGetProperty("id", out var got) && got.ValueKind == JsonValueKind.Number && got.GetInt64() == id)
            {
                return message;
            }

            if (message.TryGetProperty("id", out var other) && other.ValueKind == JsonValueKind.Number)
            {
                _early[other.GetInt64()] = message; // another request's answer, read first
                continue;
            }

            Notifications.Add(message);
        }
    }

    public async Task<JsonElement> CallAsync(string method, object? parameters = null, TimeSpan? bound = null)
    {
        var answer = await AnswerAsync(await SendAsync(method, parameters), bound);
        Assert.True(answer.TryGetProperty("result", out var result), $"{method} failed: {answer}");
        return result;
    }

    public async Task<(int Code, string Message)> FailAsync(string method, object? parameters = null)
    {
        var answer = await AnswerAsync(await SendAsync(method, parameters));
        Assert.True(answer.TryGetProperty("error", out var error), $"{method} did not fail: {answer}");
        return (error.GetProperty("code").GetInt32(), error.GetProperty("message").GetString()!);
    }

    public static string Text(JsonElement base64) => Encoding.UTF8.GetString(Convert.FromBase64String(base64.GetString()!));

    /// <summary>Closes stdin and waits for the process (killed by PID past the bound).</summary>
    public async Task<int> EndAsync(TimeSpan bound)
    {
        _process.StandardInput.Close();
        using var cts = new CancellationTokenSource(bound);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            throw new TimeoutException($"matchlock rpc did not exit within {bound.TotalSeconds} s of its stdin closing");
        }

        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
