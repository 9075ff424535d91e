using System.Buffers;
using System.Net.Sockets;
using System.Text.Json;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// Answers the host's network hook callbacks: listens on a UNIX socket in a private temporary
/// directory (mode 0700, so only this user can connect) and, per connection, reads one
/// <c>HookCallbackRequest</c>, runs the rule's hook and writes one <c>HookCallbackReply</c> line.
/// </summary>
/// <remarks>
/// A hook that throws, times out, or is asked about an unknown <c>callback_id</c> answers
/// <c>{"error": …}</c>, which the host turns into a blocked request (fail closed).
/// </remarks>
internal sealed class NetworkHookServer : IAsyncDisposable
{
    private const int MaxRequest = 4 * 1024 * 1024;
    private static readonly TimeSpan DefaultHookTimeout = TimeSpan.FromSeconds(30);

    private readonly IReadOnlyDictionary<string, NetworkHookRule> _rules;
    private readonly DirectoryInfo _directory;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;

    private NetworkHookServer(IReadOnlyDictionary<string, NetworkHookRule> rules, DirectoryInfo directory, Socket listener)
    {
        _rules = rules;
        _directory = directory;
        _listener = listener;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The socket path, sent as <c>network.interception.callback_socket</c>.</summary>
    public string SocketPath => Path.Combine(_directory.FullName, "hook.sock");

    /// <summary>Starts serving the callback rules, keyed by their <c>callback_id</c>.</summary>
    public static NetworkHookServer Start(IReadOnlyDictionary<string, NetworkHookRule> rules)
    {
        // CreateTempSubdirectory makes the directory 0700 on Unix: the socket inside is ours alone.
        var directory = Directory.CreateTempSubdirectory("matchlock-hook-");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(directory.FullName, "hook.sock")));
            listener.Listen(64);
        }
        catch (SocketException)
        {
            listener.Dispose();
            directory.Delete(recursive: true);
            throw;
        }

        return new NetworkHookServer(rules, directory, listener);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        await _accepting;
        _directory.Delete(recursive: true);
        _stopping.Dispose();
    }

    /// <summary>The reply to one request line, as JSON bytes (newline-terminated).</summary>
    internal async Task<byte[]> AnswerAsync(ReadOnlyMemory<byte> requestJson, CancellationToken cancellationToken)
    {
        NetworkHookRequest request;
        string callbackId;
        try
        {
            (callbackId, request) = HookJson.ReadRequest(requestJson);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            return HookJson.Error($"malformed callback request: {ex.Message}");
        }

        if (!_rules.TryGetValue(callbackId, out var rule) || rule.Hook is null)
        {
            return HookJson.Error($"no network hook has callback_id '{callbackId}'");
        }

        if (rule.Phase is { } phase && phase != request.Phase)
        {
            return HookJson.Error($"network hook '{callbackId}' is for phase {phase}, asked about {request.Phase}");
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(rule.Timeout ?? DefaultHookTimeout);
        try
        {
            var result = await rule.Hook(request, deadline.Token);
            return HookJson.Reply(result);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Whatever the hook threw becomes the error answer: the host then blocks the request.
            return HookJson.Error($"network hook '{rule.Name ?? callbackId}' failed: {ex.GetType().Name}: {ex.Message}");
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException && _stopping.IsCancellationRequested)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        using (connection)
        {
            await using var stream = new NetworkStream(connection, ownsSocket: false);
            try
            {
                var request = await ReadLineAsync(stream, _stopping.Token);
                var reply = request is null
                    ? HookJson.Error($"the callback request is empty or larger than {MaxRequest} bytes")
                    : await AnswerAsync(request.Value, _stopping.Token);
                await stream.WriteAsync(reply, _stopping.Token);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                // The host gave up on this callback (its timeout) or we are stopping: it blocks the request itself.
            }
        }
    }

    /// <summary>One line, or all the bytes up to the end when the host half-closes without a newline.</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        while (buffer.WrittenCount <= MaxRequest)
        {
            var memory = buffer.GetMemory(4096);
            var n = await stream.ReadAsync(memory, cancellationToken);
            if (n == 0)
            {
                break;
            }

            var newline = memory.Span[..n].IndexOf((byte)'\n');
            buffer.Advance(newline >= 0 ? newline : n);
            if (newline >= 0)
            {
                return buffer.WrittenMemory;
            }
        }

        return buffer.WrittenCount is > 0 and <= MaxRequest ? buffer.WrittenMemory : null;
    }
}
