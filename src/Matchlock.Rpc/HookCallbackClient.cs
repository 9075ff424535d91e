using System.Buffers;
using System.Net.Sockets;
using System.Text.Json;
using Matchlock.Core.Network.Policy;

namespace Matchlock.Rpc;

/// <summary>
/// Calls an SDK's network hooks over its UNIX socket (<c>network.interception.callback_socket</c>):
/// one connection per invocation, one JSON request line written, one JSON reply read (contract
/// HookCallbackRequest / HookCallbackReply). Anything but a well-formed, timely reply throws, and
/// the proxy then blocks the request.
/// </summary>
internal sealed class HookCallbackClient(string socketPath) : INetworkHookCallback
{
    private const int MaxReply = 16 * 1024 * 1024;

    public async Task<HookCallbackResult> InvokeAsync(HookCallbackRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Serialize(request), cancellationToken);
        await stream.FlushAsync(cancellationToken);

        var reply = new ArrayBufferWriter<byte>(1024);
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var n = await stream.ReadAsync(buffer, cancellationToken);
            if (n == 0)
            {
                break;
            }

            var newline = Array.IndexOf(buffer, (byte)'\n', 0, n);
            reply.Write(buffer.AsSpan(0, newline >= 0 ? newline : n));
            if (newline >= 0)
            {
                break;
            }

            if (reply.WrittenCount > MaxReply)
            {
                throw new InvalidDataException($"the hook's reply is larger than {MaxReply} bytes");
            }
        }

        return Parse(reply.WrittenMemory);
    }

    internal static byte[] Serialize(HookCallbackRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("callback_id", request.CallbackId);
            w.WriteString("phase", request.Phase == HookPhase.Before ? "before" : "after");
            w.WriteString("host", request.Host);
            w.WriteString("method", request.Method);
            w.WriteString("path", request.Path);
            w.WriteStartObject("query");
            foreach (var (key, value) in request.Query)
            {
                w.WriteString(key, value);
            }

            w.WriteEndObject();
            WriteHeaders(w, "request_headers", request.RequestHeaders);
            if (request.Phase == HookPhase.After)
            {
                w.WriteNumber("status_code", request.StatusCode ?? 0);
                WriteHeaders(w, "response_headers", request.ResponseHeaders ?? new Dictionary<string, IReadOnlyList<string>>());
                w.WriteBoolean("is_sse", request.IsServerSentEvents);
            }

            w.WriteEndObject();
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    /// <exception cref="InvalidDataException">Not a reply of the contract's shape.</exception>
    internal static HookCallbackResult Parse(ReadOnlyMemory<byte> json)
    {
        if (json.IsEmpty)
        {
            throw new InvalidDataException("the hook closed the connection without a reply");
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException("the hook's reply is not a JSON object");
            }

            if (Optional(root, "error") is { ValueKind: JsonValueKind.String } error && error.GetString() is { Length: > 0 } message)
            {
                return new HookCallbackResult { Error = message };
            }

            var action = Optional(root, "action")?.GetString()?.Trim().ToLowerInvariant() switch
            {
                null or "" => (HookAction?)null,
                "allow" => HookAction.Allow,
                "block" => HookAction.Block,
                "mutate" => HookAction.Mutate,
                var other => throw new InvalidDataException($"the hook's action \"{other}\" is not allow, block or mutate"),
            };
            var request = Optional(root, "request");
            var response = Optional(root, "response");
            return new HookCallbackResult
            {
                Action = action,
                RequestHeaders = request is { } rq ? Headers(rq, "headers") : null,
                Query = request is { } rq2 && Optional(rq2, "query") is { ValueKind: JsonValueKind.Object } q
                    ? q.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal)
                    : null,
                Path = request is { } rq3 && Optional(rq3, "path")?.GetString() is { Length: > 0 } path ? path : null,
                ResponseHeaders = response is { } rs ? Headers(rs, "headers") : null,
                BodyReplacements = response is { } rs2 && Optional(rs2, "body_replacements") is { ValueKind: JsonValueKind.Array } list
                    ? [.. list.EnumerateArray().Select(b => new BodyReplacement(b.GetProperty("find").GetString() ?? "", Optional(b, "replace")?.GetString() ?? ""))]
                    : [],
                SetBody = response is { } rs3 && Optional(rs3, "set_body_base64")?.GetString() is { Length: > 0 } body ? Convert.FromBase64String(body) : null,
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException("the hook's reply is malformed: " + ex.Message, ex);
        }
    }

    private static JsonElement? Optional(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static IReadOnlyDictionary<string, IReadOnlyList<string>>? Headers(JsonElement obj, string name)
    {
        if (Optional(obj, name) is not { ValueKind: JsonValueKind.Object } headers)
        {
            return null;
        }

        var map = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in headers.EnumerateObject())
        {
            map[header.Name] = header.Value.ValueKind switch
            {
                JsonValueKind.Array => [.. header.Value.EnumerateArray().Select(v => v.GetString() ?? "")],
                JsonValueKind.String => [header.Value.GetString()!],
                _ => throw new InvalidDataException($"header {header.Name}: expected a string or an array of strings"),
            };
        }

        return map;
    }

    private static void WriteHeaders(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, IReadOnlyList<string>> headers)
    {
        w.WriteStartObject(name);
        foreach (var (header, values) in headers)
        {
            w.WriteStartArray(header);
            foreach (var value in values)
            {
                w.WriteStringValue(value);
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    }
}
