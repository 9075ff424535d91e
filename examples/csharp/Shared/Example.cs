using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Matchlock.Sdk;

namespace Matchlock.Examples;

/// <summary>What every example shares: the image, checks, and a loopback upstream to talk to.</summary>
internal static class Example
{
    /// <summary>The name the guest uses for an upstream given as an IP literal.</summary>
    public const string GuestName = "upstream.example";

    public static string Image => Environment.GetEnvironmentVariable("MATCHLOCK_EXAMPLE_IMAGE") is { Length: > 0 } image ? image : "busybox";

    public static MatchlockClientOptions Client { get; } = new() { RemoveOnDispose = true };

    /// <summary>
    /// Runs an example with a 3-minute limit: 0 when every check held, 1 otherwise. A failed
    /// check throws, so the <c>await using</c> blocks still close and remove the sandbox.
    /// </summary>
    public static async Task<int> RunAsync(Func<CancellationToken, Task> example)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await example(timeout.Token);
            return 0;
        }
        catch (CheckFailedException ex)
        {
            Console.Error.WriteLine($"FAILED: {ex.Message}");
            return 1;
        }
        catch (Exception ex) when (ex is MatchlockRpcException or OperationCanceledException or IOException or HttpRequestException)
        {
            Console.Error.WriteLine($"FAILED: {ex.GetType().Name}: {ex.Message}");
            return 1;
        }
    }

    public static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new CheckFailedException(what);
        }

        Console.WriteLine($"ok: {what}");
    }

    private sealed class CheckFailedException(string message) : Exception(message);

    /// <summary>
    /// Lets the guest reach <paramref name="url"/>: an IP literal is mapped to
    /// <see cref="GuestName"/> (the host's proxy dials that address for it, also a loopback one),
    /// and the name goes on the allow-list. Returns the URL as the guest writes it, and the host
    /// a secret must name (plain http needs the scheme: the only way a secret may go in cleartext).
    /// </summary>
    public static (SandboxOptions Options, string GuestUrl, string SecretHost) Reach(SandboxOptions options, string url)
    {
        var uri = new Uri(url);
        var host = uri.Host;
        if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out _))
        {
            options = options with { AddHosts = [.. options.AddHosts, new HostMapping(GuestName, uri.Host.Trim('[', ']'))] };
            host = GuestName;
        }

        options = options with { AllowHosts = [.. options.AllowHosts, host] };
        var guestUrl = $"{uri.Scheme}://{host}{(uri.IsDefaultPort ? "" : ":" + uri.Port)}";
        return (options, guestUrl, uri.Scheme == "http" ? $"http://{host}" : host);
    }
}

/// <summary>
/// The upstream the guest talks to: <c>$MATCHLOCK_EXAMPLE_UPSTREAM</c>, else a small HTTP server
/// started here on 127.0.0.1. <c>GET /sse</c> streams three <c>data: hello world N</c> events;
/// any other GET answers the request as JSON <c>{method, path, query, headers}</c> (header names
/// lower-case).
/// </summary>
internal sealed class Upstream : IAsyncDisposable
{
    // A plain TCP server rather than HttpListener: the guest names the upstream upstream.example,
    // and HttpListener answers 404 to a Host it was not bound to. Loopback only.
    private readonly TcpListener? _listener;
    private readonly Task? _serving;

    private Upstream(string url, TcpListener? listener)
    {
        Url = url;
        _listener = listener;
        _serving = listener is null ? null : Task.Run(ServeAsync);
    }

    public string Url { get; }

    public static Upstream Start()
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_EXAMPLE_UPSTREAM") is { Length: > 0 } given)
        {
            return new Upstream(given.TrimEnd('/'), null);
        }

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new Upstream($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", listener);
    }

    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
        {
            _listener.Stop();
            await _serving!;
        }
    }

    private async Task ServeAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener!.AcceptTcpClientAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return; // stopped
            }

            _ = Task.Run(() => AnswerAsync(client));
        }
    }

    /// <summary>One request per connection: reads the head, answers, closes.</summary>
    private static async Task AnswerAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var head = new StringBuilder();
            var buffer = new byte[8192];
            while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    return;
                }

                head.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            var lines = head.ToString()[..head.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n");
            var requestLine = lines[0].Split(' ');
            var target = requestLine.Length > 1 ? requestLine[1] : "/";
            var path = target.Split('?', 2)[0];
            var query = target.Contains('?', StringComparison.Ordinal) ? target.Split('?', 2)[1] : "";
            string contentType;
            byte[] body;
            if (path == "/sse")
            {
                contentType = "text/event-stream";
                body = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 3).Select(i => $"data: hello world {i}\n\n")));
            }
            else
            {
                contentType = "application/json";
                using var json = new MemoryStream();
                using (var w = new Utf8JsonWriter(json))
                {
                    w.WriteStartObject();
                    w.WriteString("method", requestLine[0]);
                    w.WriteString("path", path);
                    w.WriteStartObject("query");
                    foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var kv = pair.Split('=', 2);
                        w.WriteString(Uri.UnescapeDataString(kv[0]), kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "");
                    }

                    w.WriteEndObject();
                    w.WriteStartObject("headers");
                    foreach (var line in lines.Skip(1))
                    {
                        var colon = line.IndexOf(':', StringComparison.Ordinal);
                        if (colon > 0)
                        {
                            w.WriteString(line[..colon].Trim().ToLowerInvariant(), line[(colon + 1)..].Trim());
                        }
                    }

                    w.WriteEndObject();
                    w.WriteEndObject();
                }

                body = json.ToArray();
            }

            var response = $"HTTP/1.1 200 OK\r\nX-Upstream: example\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(response));
            await stream.WriteAsync(body);
        }
    }
}
