// bench/proxy: the egress proxy against a direct connection, same process, same run, loopback only.
// See README.md for what each number means.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

var requests = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5000;
var downloadBytes = (args.Length > 1 ? long.Parse(args[1], CultureInfo.InvariantCulture) : 1024) << 20;
var ct = CancellationToken.None;

// Upstream: Kestrel HTTPS on 127.0.0.1 with a certificate for api.test from a throwaway CA.
using var upstreamCa = CertificateAuthority.Create("bench upstream CA");
var caFile = Path.Combine(Path.GetTempPath(), $"matchlock-bench-ca-{Environment.ProcessId}.pem");
File.WriteAllText(caFile, upstreamCa.CertificatePem);
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
{
    l.Protocols = HttpProtocols.Http1AndHttp2;
    l.UseHttps(upstreamCa.IssueLeaf(HostName.Parse("api.test")));
}));
var upstream = builder.Build();
var chunk = new byte[256 * 1024];
upstream.Run(async ctx =>
{
    if (ctx.Request.Path == "/big")
    {
        var total = long.Parse(ctx.Request.Query["n"]!, CultureInfo.InvariantCulture);
        ctx.Response.ContentLength = total;
        for (long sent = 0; sent < total; sent += chunk.Length)
        {
            await ctx.Response.Body.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, total - sent)));
        }

        return;
    }

    await ctx.Response.WriteAsync("ok");
});
await upstream.StartAsync(ct);
var upstreamPort = new Uri(upstream.Urls.First()).Port;
var upstreamEndPoint = new IPEndPoint(IPAddress.Loopback, upstreamPort);

// Proxy: one listener on 127.0.0.1, api.test mapped to 127.0.0.1 by add-host and allowed.
using var sandboxCa = CertificateAuthority.Create();
var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
listener.Listen(512);
var proxyEndPoint = (IPEndPoint)listener.LocalEndPoint!;
var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("api.test")]);
policy.AddHost(HostName.Parse("api.test"), IPAddress.Loopback);
await using var proxy = await EgressProxy.StartAsync(new EgressProxyOptions
{
    Policy = policy,
    Authority = sandboxCa,
    UpstreamCaFile = caFile,
    Listeners = [listener],
    OriginalDestination = _ => upstreamEndPoint,
}, ct);

var url = $"https://api.test:{upstreamPort}";
using var direct = Client(upstreamEndPoint, upstreamCa.Certificate);
using var viaProxy = Client(proxyEndPoint, sandboxCa.Certificate);

Console.WriteLine($"bench/proxy: {requests} keep-alive HTTPS requests, {downloadBytes >> 20} MiB download, {Environment.ProcessorCount} CPUs");

// 1. Latency, interleaved in blocks so drift affects both sides alike.
var directTimes = new List<double>();
var proxyTimes = new List<double>();
await Latency(direct, 200, null);
await Latency(viaProxy, 200, null);
for (var block = 0; block < 10; block++)
{
    await Latency(direct, requests / 10, directTimes);
    await Latency(viaProxy, requests / 10, proxyTimes);
}

var (d50, d99) = (Percentile(directTimes, 50), Percentile(directTimes, 99));
var (p50, p99) = (Percentile(proxyTimes, 50), Percentile(proxyTimes, 99));
Console.WriteLine($"latency direct  p50 {d50:F3} ms  p99 {d99:F3} ms");
Console.WriteLine($"latency proxy   p50 {p50:F3} ms  p99 {p99:F3} ms");
Console.WriteLine($"added           p50 {p50 - d50:F3} ms  p99 {p99 - d99:F3} ms   (target p50 <= 1 ms)");

// 2. Throughput of one large download.
var directMbps = await Download(direct);
var proxyMbps = await Download(viaProxy);
Console.WriteLine($"download direct {directMbps:F0} MiB/s  proxy {proxyMbps:F0} MiB/s  ratio {100 * proxyMbps / directMbps:F0} %   (target >= 70 %)");

// 3. Leaf minting (new SNI: leaf + SslStreamCertificateContext).
const int Leaves = 1000;
var sw = Stopwatch.StartNew();
for (var i = 0; i < Leaves; i++)
{
    sandboxCa.GetServerContext(HostName.Parse($"host{i}.mint.test"));
}

Console.WriteLine($"leaf minting    {Leaves / sw.Elapsed.TotalSeconds:F0} leaves/s ({sw.Elapsed.TotalMilliseconds / Leaves:F3} ms each)");

// 4. Full TLS handshakes against the proxy (cached leaf, fresh TCP connection each, no resumption).
const int Handshakes = 500;
sw.Restart();
for (var i = 0; i < Handshakes; i++)
{
    using var tcp = new TcpClient { NoDelay = true };
    await tcp.ConnectAsync(proxyEndPoint, ct);
    await using var tls = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
    await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "api.test" }, ct);
}

Console.WriteLine($"full handshakes {Handshakes / sw.Elapsed.TotalSeconds:F0} /s (client and proxy on the same {Environment.ProcessorCount} CPUs)");

await upstream.StopAsync(ct);
File.Delete(caFile);
return;

async Task Latency(HttpClient client, int count, List<double>? into)
{
    for (var i = 0; i < count; i++)
    {
        var start = Stopwatch.GetTimestamp();
        using var response = await client.GetAsync(url + "/small", ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        into?.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }
}

async Task<double> Download(HttpClient client)
{
    var start = Stopwatch.GetTimestamp();
    using var response = await client.GetAsync($"{url}/big?n={downloadBytes}", HttpCompletionOption.ResponseHeadersRead, ct);
    await using var body = await response.Content.ReadAsStreamAsync(ct);
    var buffer = new byte[256 * 1024];
    long total = 0;
    int n;
    while ((n = await body.ReadAsync(buffer, ct)) > 0)
    {
        total += n;
    }

    if (total != downloadBytes)
    {
        throw new InvalidOperationException($"downloaded {total} bytes, expected {downloadBytes}");
    }

    return total / 1048576.0 / Stopwatch.GetElapsedTime(start).TotalSeconds;
}

static double Percentile(List<double> values, int p)
{
    var sorted = values.Order().ToList();
    return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p / 100.0 * sorted.Count) - 1)];
}

static HttpClient Client(IPEndPoint connectTo, X509Certificate2 root) => new(new SocketsHttpHandler
{
    UseProxy = false,
    ConnectCallback = async (_, token) =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(connectTo, token);
        return new NetworkStream(s, ownsSocket: true);
    },
    SslOptions = new SslClientAuthenticationOptions
    {
        RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            if (errors != SslPolicyErrors.RemoteCertificateChainErrors || cert is not X509Certificate2 leaf)
            {
                return errors == SslPolicyErrors.None;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(root);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(leaf);
        },
    },
});
