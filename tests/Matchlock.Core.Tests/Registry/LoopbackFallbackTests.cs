using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Registry;

/// <summary>
/// Over real loopback sockets (port 0): a plain-HTTP registry on 127.0.0.1 is reached over HTTP
/// directly (no TLS probe, so no TLS start-up cost on every pull), and a TLS-only one — which
/// answers plain HTTP with Go's "400 … HTTP request to an HTTPS server" — over HTTPS after that.
/// </summary>
public sealed class LoopbackFallbackTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string NotFoundBody = """{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}""";

    [Fact]
    public async Task A_plain_http_loopback_registry_is_reached_over_http_without_a_tls_probe()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var requests = new List<string>();
        var server = ServeAsync(listener, requests, tls: null);
        var image = ImageReference.Parse($"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/app:1.0");

        using (var first = NewClient())
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => first.GetManifestAsync(image, Platform.Default, Ct));
            Assert.Equal(RegistryErrorKind.NotFound, e.Failure);
        }

        using var fresh = NewClient();
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<RegistryException>(() => fresh.GetManifestAsync(image, Platform.Default, Ct));
        var warm = clock.Elapsed;

        Assert.Equal(["GET /v2/app/manifests/1.0 HTTP/1.1", "GET /v2/app/manifests/1.0 HTTP/1.1"], requests);
        // Generous bound for loaded CI machines; locally a warm request takes about a millisecond.
        Assert.True(warm < TimeSpan.FromMilliseconds(200), $"a warm request took {warm.TotalMilliseconds:0.0} ms");
        listener.Stop();
        await server.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact]
    public async Task A_tls_only_loopback_registry_is_reached_over_https_after_its_plain_http_refusal()
    {
        using var certificate = SelfSigned();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var requests = new List<string>();
        var server = ServeAsync(listener, requests, certificate);
        var image = ImageReference.Parse($"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/app:1.0");

        using var client = NewClient();
        var e = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(image, Platform.Default, Ct));
        await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(image, Platform.Default, Ct));

        Assert.Equal(RegistryErrorKind.NotFound, e.Failure);
        // One refused plain request, then HTTPS, remembered for the second call.
        Assert.Equal(["PLAIN", "TLS GET /v2/app/manifests/1.0 HTTP/1.1", "TLS GET /v2/app/manifests/1.0 HTTP/1.1"], requests);
        listener.Stop();
        await server.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    private static RegistryClient NewClient() =>
        new(new RegistryClientOptions { Credentials = new FixedCredentials(null), InsecureRegistries = [] });

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Answers every request 404 MANIFEST_UNKNOWN; with a certificate it speaks only TLS, refusing plain HTTP as Go does.</summary>
    private static async Task ServeAsync(TcpListener listener, List<string> requests, X509Certificate2? tls)
    {
        while (!Ct.IsCancellationRequested)
        {
            using var socket = await listener.AcceptSocketAsync(Ct);
            await using var network = new NetworkStream(socket, ownsSocket: false);
            Stream stream = network;
            var prefix = "";
            if (tls is not null)
            {
                var first = new byte[1];
                if (await network.ReadAsync(first, Ct) == 0)
                {
                    continue;
                }

                if (first[0] != 0x16)
                {
                    // Read the request head first (as Go does), so closing does not reset the connection.
                    var head = new byte[8192];
                    _ = await network.ReadAsync(head, Ct);
                    requests.Add("PLAIN");
                    await network.WriteAsync("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"u8.ToArray(), Ct);
                    continue;
                }

                var ssl = new SslStream(new PrefixStream(first[0], network));
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = tls }, Ct);
                stream = ssl;
                prefix = "TLS ";
            }

            var buffer = new byte[8192];
            var n = await stream.ReadAsync(buffer, Ct);
            requests.Add(prefix + Encoding.ASCII.GetString(buffer, 0, n).Split("\r\n")[0]);
            var response = $"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {NotFoundBody.Length}\r\nConnection: close\r\n\r\n{NotFoundBody}";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(response), Ct);
            await stream.FlushAsync(Ct);
            await stream.DisposeAsync();
        }
    }

    /// <summary>Gives back the one byte read to tell TLS from plain HTTP.</summary>
    private sealed class PrefixStream(byte first, Stream inner) : Stream
    {
        private bool _given;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (!_given && count > 0)
            {
                _given = true;
                buffer[offset] = first;
                return 1;
            }

            return inner.Read(buffer, offset, count);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_given && buffer.Length > 0)
            {
                _given = true;
                buffer.Span[0] = first;
                return 1;
            }

            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
