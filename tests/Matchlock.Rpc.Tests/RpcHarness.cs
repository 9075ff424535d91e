using System.IO.Pipelines;
using System.Text;
using System.Text.Json;

namespace Matchlock.Rpc.Tests;

/// <summary>An <see cref="RpcServer"/> on in-memory pipes, with a client that writes lines and reads what comes back.</summary>
internal sealed class RpcHarness : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly Pipe _toServer = new();
    private readonly Pipe _fromServer = new();
    private readonly StreamReader _reader;
    private readonly Stream _writer;

    public RpcHarness()
    {
        Factory = new FakeFactory();
        var server = new RpcServer(_toServer.Reader.AsStream(), _fromServer.Writer.AsStream(), Factory);
        Served = Task.Run(async () =>
        {
            await server.ServeAsync(CancellationToken.None);
            await _fromServer.Writer.CompleteAsync();
        });
        _reader = new StreamReader(_fromServer.Reader.AsStream(), Encoding.UTF8);
        _writer = _toServer.Writer.AsStream();
    }

    public FakeFactory Factory { get; }

    public FakeSandbox Sandbox => Factory.Created.Single();

    /// <summary>Completes when the server stopped serving (close, or the end of its input).</summary>
    public Task Served { get; }

    /// <summary>Every line the server wrote, in order.</summary>
    public List<JsonElement> Received { get; } = [];

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async Task SendAsync(string line)
    {
        await _writer.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), Ct);
        await _writer.FlushAsync(Ct);
    }

    public Task SendAsync(long id, string method, object? parameters = null) =>
        SendAsync(JsonSerializer.Serialize(new Dictionary<string, object?> { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters }, RpcTestJson.Options));

    public async Task EndInputAsync() => await _toServer.Writer.CompleteAsync();

    /// <summary>The next line from the server (every line must be one JSON object).</summary>
    public async Task<JsonElement> NextAsync()
    {
        var line = await _reader.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct) ?? throw new EndOfStreamException("the server closed its output");
        var element = JsonDocument.Parse(line).RootElement.Clone();
        Assert.Equal(JsonValueKind.Object, element.ValueKind);
        Assert.Equal("2.0", element.GetProperty("jsonrpc").GetString());
        Received.Add(element);
        return element;
    }

    /// <summary>Reads until the answer to <paramref name="id"/>; the notifications before it are returned too.</summary>
    public async Task<(JsonElement Answer, List<JsonElement> Notifications)> AnswerAsync(long id)
    {
        var notifications = new List<JsonElement>();
        while (true)
        {
            var message = await NextAsync();
            if (message.TryGetProperty("id", out var got) && got.ValueKind == JsonValueKind.Number && got.GetInt64() == id)
            {
                return (message, notifications);
            }

            notifications.Add(message);
        }
    }

    public async Task<JsonElement> ResultAsync(long id, string method, object? parameters = null)
    {
        await SendAsync(id, method, parameters);
        var (answer, _) = await AnswerAsync(id);
        Assert.True(answer.TryGetProperty("result", out var result), $"{method} failed: {answer}");
        return result;
    }

    public async Task<(int Code, string Message)> ErrorAsync(long id, string method, object? parameters = null)
    {
        await SendAsync(id, method, parameters);
        var (answer, _) = await AnswerAsync(id);
        Assert.True(answer.TryGetProperty("error", out var error), $"{method} did not fail: {answer}");
        return (error.GetProperty("code").GetInt32(), error.GetProperty("message").GetString()!);
    }

    public async Task CreateAsync(object? parameters = null) =>
        await ResultAsync(1, "create", parameters ?? new { image = "busybox" });

    public async ValueTask DisposeAsync()
    {
        await _toServer.Writer.CompleteAsync();
        await Served.WaitAsync(Bound);
        foreach (var sandbox in Factory.Created)
        {
            await sandbox.DisposeAsync();
        }
    }
}

internal static class RpcTestJson
{
    public static readonly JsonSerializerOptions Options = new() { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never };
}
