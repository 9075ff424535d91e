using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Registry;

/// <summary>
/// Over a real loopback socket (port 0): a plain-HTTP registry on 127.0.0.1 is reached through the
/// HTTPS-first probe, and the probe costs little because the server answers a TLS ClientHello with
/// an HTTP 400 and closes, as Go's net/http (and so registry:2) does.
/// </summary>
public sealed class LoopbackFallbackTests
{
    [Fact]
    public async Task A_plain_http_loopback_registry_is_reached_quickly_after_the_https_probe()
    {
        var ct = TestContext.Current.CancellationToken;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var requests = new List<string>();
        var server = ServeAsync(listener, requests, ct);
        using var client = new RegistryClient(new RegistryClientOptions { Credentials = new FixedCredentials(null), InsecureRegistries = [] });
        var image = ImageReference.Parse($"127.0.0.1:{port}/app:1.0");

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(image, Platform.Default, ct));
        var first = clock.Elapsed;
        clock.Restart();
        await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(image, Platform.Default, ct));
        var second = clock.Elapsed;

        // A fresh client pays the probe again, now without the one-off JIT and TLS start-up cost.
        using var fresh = new RegistryClient(new RegistryClientOptions { Credentials = new FixedCredentials(null), InsecureRegistries = [] });
        clock.Restart();
        await Assert.ThrowsAsync<RegistryException>(() => fresh.GetManifestAsync(image, Platform.Default, ct));
        var warmProbe = clock.Elapsed;

        Assert.Equal(RegistryErrorKind.NotFound, e.Kind);
        Assert.Equal(3, requests.Count(r => r.StartsWith("GET /v2/app/manifests/1.0 ", StringComparison.Ordinal)));
        Assert.Equal(2, requests.Count(r => r == "TLS"));
        // Generous bound for loaded CI machines; locally the probe takes a few ms.
        Assert.True(first < TimeSpan.FromMilliseconds(1000), $"first pull took {first.TotalMilliseconds:0} ms");
        Assert.True(warmProbe < TimeSpan.FromMilliseconds(100), $"probe + request took {warmProbe.TotalMilliseconds:0.0} ms (request alone {second.TotalMilliseconds:0.0} ms)");
        listener.Stop();
        await server.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private static async Task ServeAsync(TcpListener listener, List<string> requests, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            using var socket = await listener.AcceptSocketAsync(ct);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var buffer = new byte[8192];
            var n = await stream.ReadAsync(buffer, ct);
            if (n > 0 && buffer[0] == 0x16)
            {
                // A TLS handshake record on a plain-HTTP port.
                requests.Add("TLS");
                await stream.WriteAsync("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"u8.ToArray(), ct);
                continue;
            }

            requests.Add(Encoding.ASCII.GetString(buffer, 0, n).Split("\r\n")[0]);
            var body = """{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}""";
            var response = $"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(response), ct);
        }
    }
}
