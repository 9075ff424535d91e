using System.Text.Json;
using Matchlock.Core.Events;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Vfs.Hooks;

namespace Matchlock.Rpc.Methods;

/// <summary>The sandbox's events as <c>event</c> notifications (docs/CONTRACTS.md, REFERENCE shapes).</summary>
internal static class EventMethods
{
    /// <summary>
    /// Sends, until disposed, each finished or refused network request
    /// (<c>{type:"network", timestamp, network{…}}</c>) and each VFS operation that happened
    /// (<c>{type:"file", timestamp, file{op, path, size, mode, uid, gid}}</c>). The proxy's other
    /// events (a secret injected, a hook applied) and refused file operations are ours and stay in
    /// <c>events.jsonl</c>: the SDKs run their after-hooks on every file event they get.
    /// </summary>
    public static IDisposable Forward(SandboxEventLog events, RpcWriter output) =>
        events.Subscribe(e =>
        {
            switch (e)
            {
                case NetworkEvent { Kind: NetworkEventKind.Completed or NetworkEventKind.Denied or NetworkEventKind.Error } network:
                    _ = output.NotifyAsync("event", w => WriteNetwork(w, network));
                    break;
                case FileEvent { BlockedBy: null } file:
                    _ = output.NotifyAsync("event", w => WriteFile(w, file));
                    break;
            }
        });

    private static void WriteNetwork(Utf8JsonWriter w, NetworkEvent e)
    {
        w.WriteString("type", "network");
        w.WriteNumber("timestamp", e.Time.ToUnixTimeMilliseconds());
        w.WriteStartObject("network");
        w.WriteString("method", e.Method ?? "");
        w.WriteString("url", NetworkMethods.Url(e));
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
    }

    private static void WriteFile(Utf8JsonWriter w, FileEvent e)
    {
        w.WriteString("type", "file");
        w.WriteNumber("timestamp", e.Time.ToUnixTimeMilliseconds());
        w.WriteStartObject("file");
        w.WriteString("op", e.Op);
        w.WriteString("path", e.Path);
        if (e.NewPath is { } newPath)
        {
            w.WriteString("new_path", newPath);
        }

        w.WriteNumber("size", e.Size);
        w.WriteNumber("mode", e.Mode);
        w.WriteNumber("uid", e.Uid);
        w.WriteNumber("gid", e.Gid);
        w.WriteEndObject();
    }
}
