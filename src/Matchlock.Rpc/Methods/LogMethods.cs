using System.Text.Json;

namespace Matchlock.Rpc.Methods;

/// <summary>
/// <c>log</c>: the sandbox's log (what the entrypoint started with <c>launch_entrypoint</c>
/// wrote), base64 as the original sends it. <c>log_stream</c>: the log from the start, then what
/// is appended, as <c>log_stream.data</c> notifications, until cancelled or the sandbox stops.
/// </summary>
internal static class LogMethods
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    public static async Task<Action<Utf8JsonWriter>> ReadAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var content = File.Exists(sandbox.LogPath) ? await ReadSharedAsync(sandbox.LogPath, call.Cancelled) : [];
        return w => w.WriteBase64String("content", content);
    }

    public static async Task<Action<Utf8JsonWriter>> StreamAsync(IRpcSandbox sandbox, RpcCall call, RpcWriter output)
    {
        long offset = 0;
        var buffer = new byte[64 * 1024];
        while (!sandbox.Stopped.IsCompleted)
        {
            if (File.Exists(sandbox.LogPath))
            {
                await using var file = new FileStream(sandbox.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                file.Seek(offset, SeekOrigin.Begin);
                int n;
                while ((n = await file.ReadAsync(buffer, call.Cancelled)) > 0)
                {
                    offset += n;
                    await output.DataAsync("log_stream.data", call.NotificationId, buffer.AsMemory(0, n));
                }
            }

            await Task.WhenAny(Task.Delay(Poll, call.Cancelled), sandbox.Stopped);
            call.Cancelled.ThrowIfCancellationRequested();
        }

        return _ => { };
    }

    private static async Task<byte[]> ReadSharedAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        await file.CopyToAsync(copy, cancellationToken);
        return copy.ToArray();
    }
}
