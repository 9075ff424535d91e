using System.Net;
using System.Text;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// The "internet" the hostile guest attacks: every server listens on a loopback address only
/// (127.0.0.1, 127.0.0.2 for the raw-rule host, ::1, and 127.0.53.53:53 for DNS) and records
/// everything it receives into <see cref="Recordings"/>. Sinks:
/// <list type="bullet">
/// <item><c>tcp</c>, <c>tls</c>: byte recorders (plain, and TLS with the upstream CA) on 127.0.0.1.</item>
/// <item><c>web-https</c> (HTTP/1.1 + h2) and <c>web-http</c>: Kestrel, recording each request
/// (request line, every header, body).</item>
/// <item><c>raw</c>: a server-speaks-first recorder on 127.0.0.2, the one port a raw-TCP rule
/// allows (for <c>raw.test</c>); <c>raw-other</c>: a second port there without a rule;
/// <c>raw-shared</c>: a port on 127.0.0.1 with a rule for <c>rawshared.test</c>, a name sharing its
/// address with names that have none; <c>silent</c>: a port only the silent-client attack uses.</item>
/// <item><c>tcp6</c>, <c>udp</c>, <c>udp6</c>, <c>dns</c>, and <c>icmp</c> (the host's incoming ICMP,
/// when a raw socket can be opened).</item>
/// </list>
/// </summary>
internal sealed class HostileUpstreams : IAsyncDisposable
{
    public static readonly IPAddress RawHostAddress = IPAddress.Parse("127.0.0.2");

    private readonly List<IAsyncDisposable> _servers = [];
    private WebApplication? _web;

    private HostileUpstreams(CertificateAuthority ca) => Ca = ca;

    public Recordings Recordings { get; } = new();

    public CertificateAuthority Ca { get; }

    public RecordingTcpServer Tcp { get; private set; } = null!;

    public RecordingTcpServer Tls { get; private set; } = null!;

    public RecordingTcpServer Raw { get; private set; } = null!;

    public RecordingTcpServer RawOther { get; private set; } = null!;

    public RecordingTcpServer RawShared { get; private set; } = null!;

    public RecordingTcpServer Silent { get; private set; } = null!;

    public RecordingTcpServer Tcp6 { get; private set; } = null!;

    public RecordingUdpServer Udp { get; private set; } = null!;

    public RecordingUdpServer Udp6 { get; private set; } = null!;

    public int WebHttpsPort { get; private set; }

    public int WebHttpPort { get; private set; }

    /// <summary>Why the ICMP recorder is missing, when it is.</summary>
    public string? IcmpLimitation { get; private set; }

    public static async Task<HostileUpstreams> StartAsync(CancellationToken cancellationToken)
    {
        var u = new HostileUpstreams(CertificateAuthority.Create("Matchlock hostile-suite upstream CA"));
        try
        {
            var r = u.Recordings;
            u.Tcp = u.Add(new RecordingTcpServer("tcp", IPAddress.Loopback, r));
            u.Tls = u.Add(new RecordingTcpServer("tls", IPAddress.Loopback, r, u.Ca));
            u.Raw = u.Add(new RecordingTcpServer("raw", RawHostAddress, r, banner: "220 raw.test recorder ready\r\n"));
            u.RawOther = u.Add(new RecordingTcpServer("raw-other", RawHostAddress, r, banner: "220 raw.test other port\r\n"));
            u.RawShared = u.Add(new RecordingTcpServer("raw-shared", IPAddress.Loopback, r, banner: "220 rawshared.test ready\r\n"));
            u.Silent = u.Add(new RecordingTcpServer("silent", IPAddress.Loopback, r));
            u.Tcp6 = u.Add(new RecordingTcpServer("tcp6", IPAddress.IPv6Loopback, r));
            u.Udp = u.Add(RecordingUdpServer.Udp("udp", IPAddress.Loopback, 0, r));
            u.Udp6 = u.Add(RecordingUdpServer.Udp("udp6", IPAddress.IPv6Loopback, 0, r));
            u.Add(FakeUpstreamDns.Start(r));
            try
            {
                u.Add(RecordingUdpServer.Icmp("icmp", r));
            }
            catch (System.Net.Sockets.SocketException e)
            {
                u.IcmpLimitation = $"no raw ICMP socket on the host ({e.SocketErrorCode}): ICMP attacks are judged by the guest's view only";
            }

            await u.StartWebAsync(cancellationToken);
            return u;
        }
        catch
        {
            await u.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_web is not null)
        {
            await _web.DisposeAsync();
        }

        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }

        Ca.Dispose();
    }

    private T Add<T>(T server)
        where T : IAsyncDisposable
    {
        _servers.Add(server);
        return server;
    }

    private async Task StartWebAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, name) => Ca.IssueLeaf(HostName.Parse(string.IsNullOrEmpty(name) ? "no-sni.test" : name)),
                });
            });
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1);
        });
        _web = builder.Build();
        _web.Run(async ctx =>
        {
            var q = ctx.Request;
            var record = Recordings.Open(q.IsHttps ? "web-https" : "web-http", overTls: q.IsHttps);
            record.Host = q.Host.Host;
            var text = new StringBuilder($"{q.Method} {q.Path}{q.QueryString} {q.Protocol}\r\n");
            foreach (var (name, values) in q.Headers)
            {
                foreach (var value in values)
                {
                    text.Append(name).Append(": ").Append(value).Append("\r\n");
                }
            }

            record.Append(text.Append("\r\n").ToString());
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await q.Body.ReadAsync(buffer, ctx.RequestAborted)) > 0)
            {
                record.Append(buffer.AsSpan(0, n));
            }

            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"web upstream saw {q.Host.Host} over {q.Protocol}\n", ctx.RequestAborted);
        });
        await _web.StartAsync(cancellationToken);
        var urls = _web.Urls.Select(u => new Uri(u)).ToList();
        WebHttpsPort = urls.Single(u => u.Scheme == "https").Port;
        WebHttpPort = urls.Single(u => u.Scheme == "http").Port;
    }
}
