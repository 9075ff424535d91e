using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Tests.Network;

/// <summary>
/// The "internet" of the proxy tests: one Kestrel server on 127.0.0.1 (random ports) speaking plain
/// HTTP on one port and HTTPS (h1 + h2) on another with a certificate for <c>api.test</c> and
/// <c>127.0.0.1</c> from a per-run test CA (the proxy gets it as its upstream CA file).
/// Records every request it receives, so tests can assert that nothing arrived.
/// </summary>
internal sealed class LoopbackUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CertificateAuthority _ca;

    private LoopbackUpstream(WebApplication app, CertificateAuthority ca, string caFile)
    {
        _app = app;
        _ca = ca;
        CaFile = caFile;
    }

    public string CaFile { get; }

    public int HttpPort { get; private set; }

    public int HttpsPort { get; private set; }

    public ConcurrentQueue<string> Requests { get; } = new();

    /// <summary>Completed by the test to let /sse send its second event.</summary>
    public TaskCompletionSource SseGate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IPEndPoint Https => new(IPAddress.Loopback, HttpsPort);

    public IPEndPoint Http => new(IPAddress.Loopback, HttpPort);

    public static async Task<LoopbackUpstream> StartAsync(string directory)
    {
        var ca = CertificateAuthority.Create("Matchlock test upstream CA");
        var caFile = Path.Combine(directory, "upstream-ca.pem");
        await File.WriteAllTextAsync(caFile, ca.CertificatePem);
        var apiCert = ca.IssueLeaf(HostName.Parse("api.test"));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        LoopbackUpstream? self = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1);
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(apiCert);
            });
        });
        var app = builder.Build();
        app.UseWebSockets();
        app.Run(ctx => self!.HandleAsync(ctx));
        self = new LoopbackUpstream(app, ca, caFile);
        await app.StartAsync();
        var ports = app.Urls.Select(u => new Uri(u)).ToList();
        self.HttpPort = ports.Single(u => u.Scheme == "http").Port;
        self.HttpsPort = ports.Single(u => u.Scheme == "https").Port;
        return self;
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        Requests.Enqueue($"{req.Method} {req.Host} {req.Path}{req.QueryString}");
        switch (req.Path.Value)
        {
            case "/ws" when ctx.WebSockets.IsWebSocketRequest:
                using (var ws = await ctx.WebSockets.AcceptWebSocketAsync())
                {
                    var buffer = new byte[4096];
                    while (true)
                    {
                        var r = await ws.ReceiveAsync(buffer, CancellationToken.None);
                        if (r.MessageType == WebSocketMessageType.Close)
                        {
                            await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                            return;
                        }

                        await ws.SendAsync(buffer.AsMemory(0, r.Count), r.MessageType, r.EndOfMessage, CancellationToken.None);
                    }
                }

            case "/sse":
                ctx.Response.ContentType = "text/event-stream";
                await ctx.Response.WriteAsync("data: hello one\n\n");
                await ctx.Response.Body.FlushAsync();
                await SseGate.Task.WaitAsync(TimeSpan.FromSeconds(20));
                await ctx.Response.WriteAsync("event: x\ndata: hello two\n\n");
                return;
            case "/big":
                var total = long.Parse(req.Query["n"]!, System.Globalization.CultureInfo.InvariantCulture);
                ctx.Response.ContentLength = total;
                var chunk = new byte[64 * 1024];
                for (long sent = 0; sent < total; sent += chunk.Length)
                {
                    await ctx.Response.Body.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, total - sent)));
                }

                return;
            default:
                ctx.Response.ContentType = "text/plain";
                ctx.Response.Headers["X-Upstream"] = "yes";
                await ctx.Response.WriteAsync(
                    $"method={req.Method}\nhost={req.Host}\npath={req.Path}\nquery={req.QueryString}\nproto={req.Protocol}\n" +
                    $"authorization={req.Headers.Authorization}\nx-key={req.Headers["X-Key"]}\nx-added={req.Headers["X-Added"]}\nx-drop={req.Headers["X-Drop"]}\n");
                return;
        }
    }

    public async ValueTask DisposeAsync()
    {
        SseGate.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _ca.Dispose();
    }
}
