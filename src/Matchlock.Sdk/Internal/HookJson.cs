using System.Buffers;
using System.Text.Json;

namespace Matchlock.Sdk.Internal;

/// <summary>The callback socket's JSON: contract/rpc.json <c>HookCallbackRequest</c> and <c>HookCallbackReply</c>.</summary>
internal static class HookJson
{
    public static (string CallbackId, NetworkHookRequest Request) ReadRequest(ReadOnlyMemory<byte> json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var phase = root.GetProperty("phase").GetString() switch
        {
            "before" => NetworkHookPhase.Before,
            "after" => NetworkHookPhase.After,
            var other => throw new FormatException($"unknown phase '{other}'"),
        };
        var request = new NetworkHookRequest
        {
            Phase = phase,
            Host = root.GetProperty("host").GetString() ?? "",
            Method = root.GetProperty("method").GetString() ?? "",
            Path = root.GetProperty("path").GetString() ?? "",
            Query = root.TryGetProperty("query", out var query) ? Wire.ReadStringMap(query) : new Dictionary<string, string>(),
            RequestHeaders = root.TryGetProperty("request_headers", out var headers) ? ReadHeaders(headers) : new Dictionary<string, IReadOnlyList<string>>(),
            StatusCode = root.TryGetProperty("status_code", out var status) && status.ValueKind == JsonValueKind.Number ? status.GetInt32() : null,
            ResponseHeaders = root.TryGetProperty("response_headers", out var responseHeaders) && responseHeaders.ValueKind == JsonValueKind.Object ? ReadHeaders(responseHeaders) : null,
            IsServerSentEvents = root.TryGetProperty("is_sse", out var sse) && sse.ValueKind == JsonValueKind.True,
        };
        return (root.GetProperty("callback_id").GetString() ?? "", request);
    }

    public static byte[] Error(string message) => Write(w => w.WriteString("error", message));

    /// <summary>The reply for a hook's result; null (no change) is <c>{}</c>.</summary>
    public static byte[] Reply(NetworkHookResult? result) => Write(w =>
    {
        if (result is null)
        {
            return;
        }

        if (result.Action is { } action)
        {
            w.WriteString("action", Wire.ActionName(action));
        }

        if (result.Request is { } request)
        {
            w.WriteStartObject("request");
            if (request.Headers is { } headers)
            {
                WriteHeaders(w, "headers", headers);
            }

            if (request.Query is { } query)
            {
                Wire.WriteStringMap(w, "query", query);
            }

            if (request.Path is { } path)
            {
                w.WriteString("path", path);
            }

            w.WriteEndObject();
        }

        if (result.Response is { } response)
        {
            w.WriteStartObject("response");
            if (response.Headers is { } headers)
            {
                WriteHeaders(w, "headers", headers);
            }

            if (response.BodyReplacements.Count > 0)
            {
                Wire.WriteBodyReplacements(w, response.BodyReplacements);
            }

            if (response.SetBody is { } body)
            {
                w.WriteBase64String("set_body_base64", body.Span);
            }

            w.WriteEndObject();
        }
    });

    private static Dictionary<string, IReadOnlyList<string>> ReadHeaders(JsonElement element)
    {
        var headers = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        if (element.ValueKind != JsonValueKind.Object)
        {
            return headers;
        }

        foreach (var header in element.EnumerateObject())
        {
            headers[header.Name] = header.Value.ValueKind == JsonValueKind.Array
                ? header.Value.EnumerateArray().Select(v => v.GetString() ?? "").ToArray()
                : [header.Value.GetString() ?? ""];
        }

        return headers;
    }

    private static void WriteHeaders(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, IReadOnlyList<string>> headers)
    {
        w.WriteStartObject(name);
        foreach (var (key, values) in headers)
        {
            w.WriteStartArray(key);
            foreach (var value in values)
            {
                w.WriteStringValue(value);
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }
}
