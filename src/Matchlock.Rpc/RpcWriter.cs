using System.Buffers;
using System.Text.Json;

namespace Matchlock.Rpc;

/// <summary>
/// The server's stdout: one JSON object per line, whole lines only, in the order they are
/// written (a command's output notifications all go out before its result). Nothing else may
/// write to this stream: a stray byte would corrupt the client's reader.
/// </summary>
internal sealed class RpcWriter(Stream output)
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private volatile bool _broken;

    /// <summary>Set once a write failed (the client closed its end): later writes are dropped.</summary>
    public bool IsBroken => _broken;

    public Task ResultAsync(JsonElement? id, Action<Utf8JsonWriter> result) => WriteAsync(w =>
    {
        WriteHeader(w, id);
        w.WritePropertyName("result");
        w.WriteStartObject();
        result(w);
        w.WriteEndObject();
    });

    public Task ErrorAsync(JsonElement? id, int code, string message) => WriteAsync(w =>
    {
        WriteHeader(w, id);
        w.WritePropertyName("error");
        w.WriteStartObject();
        w.WriteNumber("code", code);
        w.WriteString("message", message);
        w.WriteEndObject();
    });

    public Task NotifyAsync(string method, Action<Utf8JsonWriter> parameters) => WriteAsync(w =>
    {
        w.WriteString("jsonrpc", "2.0");
        w.WriteString("method", method);
        w.WritePropertyName("params");
        w.WriteStartObject();
        parameters(w);
        w.WriteEndObject();
    });

    /// <summary>An output chunk of request <paramref name="id"/>: <c>{id, data}</c> with the bytes in base64.</summary>
    public Task DataAsync(string method, JsonElement id, ReadOnlyMemory<byte> data) => NotifyAsync(method, w =>
    {
        w.WritePropertyName("id");
        id.WriteTo(w);
        w.WriteBase64String("data", data.Span);
    });

    private static void WriteHeader(Utf8JsonWriter w, JsonElement? id)
    {
        w.WriteString("jsonrpc", "2.0");
        w.WritePropertyName("id");
        if (id is { } value)
        {
            value.WriteTo(w);
        }
        else
        {
            w.WriteNullValue();
        }
    }

    private async Task WriteAsync(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = false }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        buffer.Write("\n"u8);
        if (_broken)
        {
            return;
        }

        await _lock.WaitAsync();
        try
        {
            await output.WriteAsync(buffer.WrittenMemory);
            await output.FlushAsync();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            _broken = true; // the client is gone; the server notices on its stdin
        }
        finally
        {
            _lock.Release();
        }
    }
}
