using System.Text.Json;
using Matchlock.Core.Network.Proxy;

namespace Matchlock.Rpc.Methods;

/// <summary><c>allow_list_add</c> / <c>allow_list_delete</c>, and the sandbox's network events as <c>event</c> notifications.</summary>
internal static class NetworkMethods
{
    public static Action<Utf8JsonWriter> ChangeAllowList(IRpcSandbox sandbox, RpcCall call, bool add)
    {
        var hosts = call.Params.OptionalStringArray("hosts") ?? throw RpcException.InvalidParams("params.hosts is required: expected an array of host names or patterns");
        var changed = hosts.SelectMany(h => h.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (changed.Count == 0)
        {
            throw RpcException.InvalidParams("params.hosts: no host given");
        }

        var list = sandbox.ChangeAllowList(changed, add);
        return w =>
        {
            WriteList(w, add ? "added" : "removed", changed);
            WriteList(w, "allowed_hosts", list);
        };
    }

    /// <summary>
    /// Sends each finished or refused request as an <c>event</c> notification
    /// (<c>{type: "network", timestamp, network{…}}</c>) until disposed. The proxy's other
    /// events (a secret injected, a hook applied) are ours and stay in <c>events.jsonl</c>.
    /// </summary>
    public static IDisposable ForwardEvents(NetworkEventLog events, RpcWriter output) =>
        events.Subscribe(e =>
        {
            if (e.Kind is not (NetworkEventKind.Completed or NetworkEventKind.Denied or NetworkEventKind.Error))
            {
                return;
            }

            _ = output.NotifyAsync("event", w =>
            {
                w.WriteString("type", "network");
                w.WriteNumber("timestamp", e.Time.ToUnixTimeMilliseconds());
                w.WriteStartObject("network");
                w.WriteString("method", e.Method ?? "");
                w.WriteString("url", Url(e));
                w.WriteString("host", e.Host ?? "");
                w.WriteNumber("status_code", e.Status ?? 0);
                w.WriteNumber("request_bytes", e.BytesUp ?? 0);
                w.WriteNumber("response_bytes", e.BytesDown ?? 0);
                w.WriteNumber("duration_ms", (long)(e.DurationMs ?? 0));
                w.WriteBoolean("blocked", e.Kind == NetworkEventKind.Denied);
                if (e.Kind != NetworkEventKind.Completed && e.Reason is { } reason)
                {
                    w.WriteString("block_reason", reason);
                }

                w.WriteEndObject();
            });
        });

    private static string Url(NetworkEvent e)
    {
        if (e.Host is null)
        {
            return "";
        }

        var scheme = e.Protocol is "http/1.1" or "http/1.0" or "h2c" ? "http" : "https";
        return $"{scheme}://{e.Host}{e.Path}";
    }

    private static void WriteList(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (var item in items)
        {
            w.WriteStringValue(item);
        }

        w.WriteEndArray();
    }
}
