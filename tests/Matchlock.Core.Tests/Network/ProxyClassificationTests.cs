using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Tests.Images;
using Matchlock.Tests;

namespace Matchlock.Core.Tests.Network;

/// <summary>
/// Loopback tier: what reaches an upstream when the guest does not speak clean HTTP or TLS, or speaks
/// it late, or tries to name a second destination inside an allowed request, or sends a placeholder
/// where a value would travel unprotected. Every case checks the upstreams saw nothing they must not.
/// </summary>
public sealed class ProxyClassificationTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly TempDir _dir = new();
    private LoopbackUpstream _upstream = null!;
    private RecordingTcpServer _raw = null!;

    public async ValueTask InitializeAsync()
    {
        _upstream = await LoopbackUpstream.StartAsync(_dir.Path);
        _raw = RecordingTcpServer.Start(banner: null, echo: true);
    }

    public async ValueTask DisposeAsync()
    {
        await _raw.DisposeAsync();
        await _upstream.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>
    /// Names mapped to 127.0.0.1: api.test unless <paramref name="rawOnly"/>, raw.test always, and
    /// forbidden.test when asked. Names that share the address make raw TCP to it ambiguous.
    /// </summary>
    private static NetworkPolicy Policy(IEnumerable<string> allow, IEnumerable<string>? tcp = null, bool withForbidden = false, bool rawOnly = false)
    {
        var policy = new NetworkPolicy(intercept: true, HostPattern.ParseList(allow), allowTcp: TcpRule.ParseList(tcp ?? []));
        if (!rawOnly)
        {
            policy.AddHost(HostName.Parse("api.test"), IPAddress.Loopback);
        }

        policy.AddHost(HostName.Parse("raw.test"), IPAddress.Loopback);
        if (withForbidden)
        {
            policy.AddHost(HostName.Parse("forbidden.test"), IPAddress.Loopback);
        }

        return policy;
    }

    [Theory]
    [InlineData("\r\nGET /echo HTTP/1.1\r\nHost: forbidden.test\r\n\r\n")]
    [InlineData(" GET /echo HTTP/1.1\r\nHost: forbidden.test\r\n\r\n")]
    [InlineData("GET\t/echo\tHTTP/1.1\r\nHost: forbidden.test\r\n\r\n")]
    [InlineData("GET /echo HTTP/1.1\nHost: forbidden.test\n\n")]
    [InlineData("SSH-2.0-attacker\r\nmarker\r\n")]
    [InlineData("\u0000\u0001binary marker")]
    public async Task BytesThatAreNeitherHttpNorTlsGet400AndNothingIsRelayed(string bytes)
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test", "raw.test"]), _upstream);
        proxy.Destination = _raw.EndPoint;
        var answer = await ExchangeAsync(proxy.Listener, Encoding.Latin1.GetBytes(bytes));
        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Contains("--allow-tcp", answer, StringComparison.Ordinal);
        Assert.Equal(0, _raw.Connections);
        Assert.Empty(_upstream.Requests);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Denied && e.Protocol == "tcp");
    }

    [Fact]
    public async Task RawTcpIsRelayedOnlyByAnExplicitRuleForThatNameAndPort()
    {
        var policy = Policy(["raw.test"], [$"raw.test:{_raw.EndPoint.Port}"], rawOnly: true);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        proxy.Destination = _raw.EndPoint;
        Assert.Equal("hello raw\n", await ExchangeAsync(proxy.Listener, "hello raw\n"u8.ToArray(), expect: 10));
        Assert.Equal(1, _raw.Connections);

        // The relay's event is published when both directions have ended, a moment after our close.
        await Eventually.Until(() => proxy.Snapshot().Any(e => e.Kind == NetworkEventKind.Passthrough), TimeSpan.FromSeconds(10), "the passthrough event");

        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Passthrough && e.Protocol == "tcp" && e.Host!.Contains("raw.test", StringComparison.Ordinal));

        // A rule for another port does not cover this one.
        proxy.Destination = new IPEndPoint(IPAddress.Loopback, _upstream.HttpPort);
        Assert.StartsWith("HTTP/1.1 400", await ExchangeAsync(proxy.Listener, "hello raw\n"u8.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RawTcpToAnAddressThatAForbiddenNameSharesIsRefused()
    {
        var policy = Policy(["api.test"], [$"raw.test:{_raw.EndPoint.Port}"], withForbidden: true, rawOnly: true);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        proxy.Destination = _raw.EndPoint;
        var answer = await ExchangeAsync(proxy.Listener, "for forbidden.test\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Contains("several names", answer, StringComparison.Ordinal);
        Assert.Equal(0, _raw.Connections);
    }

    [Fact]
    public async Task TlsAfterALongSilenceIsStillInterceptedAndHeldToThePolicy()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"], withForbidden: true), _upstream);
        proxy.Destination = _upstream.Https;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(proxy.Listener, Ct);
        await Task.Delay(TimeSpan.FromSeconds(1.5), Ct); // three times the raw-relay sniff timeout
        await using var tls = new SslStream(tcp.GetStream(), false, proxy.TrustsSandboxCa);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "forbidden.test" }, Ct);
        await tls.WriteAsync(Encoding.ASCII.GetBytes("GET /echo HTTP/1.1\r\nHost: forbidden.test\r\nConnection: close\r\n\r\n"), Ct);
        var text = await new StreamReader(tls).ReadToEndAsync(Ct);
        Assert.StartsWith("HTTP/1.1 403", text, StringComparison.Ordinal);
        Assert.Contains("forbidden.test is not in the sandbox's allow-list", text, StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task ASilentClientIsClosedAfterTheFirstByteTimeoutAndNeverRelayed()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"]), _upstream, firstByteTimeout: TimeSpan.FromSeconds(1));
        proxy.Destination = _raw.EndPoint;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(proxy.Listener, Ct);
        var clock = Stopwatch.StartNew();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        Assert.Equal(0, await tcp.GetStream().ReadAsync(new byte[16], timeout.Token));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.8), TimeSpan.FromSeconds(10));
        Assert.Equal(0, _raw.Connections);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Denied && e.Reason!.Contains("within 1 s", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AGuestCannotHoldMoreConnectionsThanTheLimit()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"]), _upstream, maxConnections: 3);
        proxy.Destination = _upstream.Https;
        var held = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var c = new TcpClient();
                await c.ConnectAsync(proxy.Listener, Ct);
                held.Add(c);
            }

            // Let the proxy accept all three. Kept as a fixed pause: Kestrel counts connections
            // internally and exposes no count to wait on, and probing with a fourth would take a slot.
            await Task.Delay(200, Ct);
            using var extra = new TcpClient();
            await extra.ConnectAsync(proxy.Listener, Ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            int n;
            try
            {
                n = await extra.GetStream().ReadAsync(new byte[16], timeout.Token);
            }
            catch (IOException)
            {
                n = 0;
            }

            Assert.Equal(0, n); // closed at once, not held

            // Once one closes, the next is served.
            held[0].Dispose();
            held.RemoveAt(0);
            // Kestrel frees the slot when it sees the close: retry until it has, within a bound.
            using var guest = proxy.Guest(_upstream.Https);
            HttpStatusCode? status = null;
            await Eventually.Until(
                async () =>
                {
                    try
                    {
                        status = (await guest.GetAsync($"https://api.test:{_upstream.HttpsPort}/echo", Ct)).StatusCode;
                        return true;
                    }
                    catch (HttpRequestException)
                    {
                        return false; // still at the limit: closed at once
                    }
                },
                TimeSpan.FromSeconds(10), "the freed slot to serve the next connection");
            Assert.Equal(HttpStatusCode.OK, status);
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task ASilentClientIsRelayedWhereARuleAllowsRawTcpSoServersMaySpeakFirst()
    {
        await using var banner = RecordingTcpServer.Start(banner: "220 smtp.test ready\r\n", echo: false);
        var policy = Policy([], [$"raw.test:{banner.EndPoint.Port}"], rawOnly: true);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        proxy.Destination = banner.EndPoint;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(proxy.Listener, Ct);
        var buffer = new byte[64];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var n = await tcp.GetStream().ReadAsync(buffer, timeout.Token);
        Assert.Equal("220 smtp.test ready\r\n", Encoding.ASCII.GetString(buffer, 0, n));
    }

    [Fact]
    public async Task HttpIsInterceptedEvenWhereRawTcpIsAllowed()
    {
        var policy = Policy(["api.test"], [$"raw.test:{_upstream.HttpPort}"]);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        proxy.Destination = _upstream.Http;
        var answer = await ExchangeAsync(proxy.Listener, Encoding.ASCII.GetBytes($"GET /echo HTTP/1.1\r\nHost: raw.test:{_upstream.HttpPort}\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 403", answer, StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Theory]
    [InlineData("CONNECT forbidden.test:443 HTTP/1.1\r\nHost: forbidden.test:443\r\nConnection: close\r\n\r\n")]
    [InlineData("CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\nConnection: close\r\n\r\n")]
    [InlineData("GET http://forbidden.test/echo HTTP/1.1\r\nHost: api.test:{port}\r\nConnection: close\r\n\r\n")]
    [InlineData("GET /echo HTTP/1.1\r\nHost: api.test:{port}\r\nHost: forbidden.test\r\nConnection: close\r\n\r\n")]
    [InlineData("get /echo HTTP/1.1\r\nHost: forbidden.test:{port}\r\nConnection: close\r\n\r\n")]
    public async Task RequestsThatNameASecondDestinationAreRefused(string request)
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"], withForbidden: true), _upstream);
        proxy.Destination = _upstream.Http;
        var answer = await ExchangeAsync(proxy.Listener, Encoding.ASCII.GetBytes(request.Replace("{port}", _upstream.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)));
        Assert.Matches("^HTTP/1.1 4[0-9][0-9]", answer);
        Assert.DoesNotContain(_upstream.Requests, r => r.Contains("forbidden", StringComparison.Ordinal) || r.Contains("smuggled", StringComparison.Ordinal) || r.StartsWith("CONNECT", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("POST /echo HTTP/1.1\r\nHost: api.test:{port}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: forbidden.test\r\n\r\n")]
    [InlineData("POST /echo HTTP/1.1\r\nHost: api.test:{port}\r\nContent-Length: 0\r\nContent-Length: 60\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: forbidden.test\r\n\r\n")]
    [InlineData("POST /echo HTTP/1.1\r\nHost: api.test:{port}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: forbidden.test\r\n\r\n")]
    public async Task SmuggledRequestsNeverReachAnUpstreamUnderTheirOwnHost(string request)
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"], withForbidden: true), _upstream);
        proxy.Destination = _upstream.Http;
        var answer = await ExchangeAsync(proxy.Listener, Encoding.ASCII.GetBytes(request.Replace("{port}", _upstream.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)));
        Assert.StartsWith("HTTP/1.1 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain(_upstream.Requests, r => r.Contains("forbidden", StringComparison.Ordinal) || r.Contains("smuggled", StringComparison.Ordinal));
        if (answer.Contains("/smuggled", StringComparison.Ordinal))
        {
            // The second request may be parsed as a request of its own on the kept-alive connection: then it must have been refused.
            Assert.Contains("403", answer, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task CleartextHttp2PriorKnowledgeNeverReachesAnUpstreamUnchecked()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"], withForbidden: true), _upstream);
        using var guest = proxy.Guest(_upstream.Http, HttpVersion.Version20);
        HttpStatusCode? status = null;
        try
        {
            using var response = await guest.GetAsync($"http://forbidden.test:{_upstream.HttpPort}/echo", Ct);
            status = response.StatusCode;
        }
        catch (HttpRequestException)
        {
            // Refused at the protocol level: nothing was forwarded either.
        }

        Assert.Null(status); // Kestrel does not speak cleartext h2 on an HTTP/1.1+h2 endpoint: refused, fail closed
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task APlaceholderInCleartextHttpIsRefusedForEveryHost()
    {
        const string Value = "cleartext-value-51c2";
        var secrets = SandboxSecrets.Create([SecretSpec.Parse($"API_KEY={Value}@api.test")]);
        var placeholder = secrets.GuestEnvironment["API_KEY"];
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"]), _upstream, secrets);
        using var guest = proxy.Guest(_upstream.Http);
        foreach (var (header, value) in new[] { ("X-Key", placeholder), ("Authorization", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("u:" + placeholder)).TrimEnd('=')) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://api.test:{_upstream.HttpPort}/echo");
            request.Headers.TryAddWithoutValidation(header, value);
            using var response = await guest.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Contains("over cleartext HTTP", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using var query = await guest.GetAsync($"http://api.test:{_upstream.HttpPort}/echo?k={placeholder}", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, query.StatusCode);
        Assert.Empty(_upstream.Requests);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Denied && e.Secret == "API_KEY");
    }

    [Fact]
    public async Task ASecretDeclaredForHttpGoesOverCleartextToThatHostOnly()
    {
        const string Value = "declared-plain-8e3a";
        var secrets = SandboxSecrets.Create([SecretSpec.Parse($"API_KEY={Value}@http://api.test")]);
        var placeholder = secrets.GuestEnvironment["API_KEY"];
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"]), _upstream, secrets);
        using var guest = proxy.Guest(_upstream.Http);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://api.test:{_upstream.HttpPort}/echo");
        request.Headers.TryAddWithoutValidation("X-Key", placeholder);
        using var response = await guest.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains($"x-key={Value}", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BasicCredentialsCarryTheSecretOverTlsToItsHost()
    {
        const string Value = "basic-value-0b7e";
        var secrets = SandboxSecrets.Create([SecretSpec.Parse($"API_KEY={Value}@api.test")]);
        var placeholder = secrets.GuestEnvironment["API_KEY"];
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test"]), _upstream, secrets);
        using var guest = proxy.Guest(_upstream.Https);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"https://api.test:{_upstream.HttpsPort}/echo");
        request.Headers.TryAddWithoutValidation("Authorization", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("user:" + placeholder)));
        using var response = await guest.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("authorization=Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("user:" + Value)), body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APercentEncodedPlaceholderForAnotherHostIsRefused()
    {
        var secrets = SandboxSecrets.Create([SecretSpec.Parse("API_KEY=v@elsewhere.test")]);
        var placeholder = secrets.GuestEnvironment["API_KEY"];
        await using var proxy = await ProxyHarness.StartAsync(Policy(["api.test", "elsewhere.test"]), _upstream, secrets);
        using var guest = proxy.Guest(_upstream.Https);
        var encoded = "%" + ((int)placeholder[0]).ToString("X2", System.Globalization.CultureInfo.InvariantCulture) + placeholder[1..];
        using var response = await guest.GetAsync($"https://api.test:{_upstream.HttpsPort}/echo?k={encoded}", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Empty(_upstream.Requests);
    }

    /// <summary>Sends bytes, then reads until the proxy closes (or <paramref name="expect"/> bytes arrived).</summary>
    private static async Task<string> ExchangeAsync(IPEndPoint proxy, byte[] bytes, int expect = int.MaxValue)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(proxy, Ct);
        var stream = tcp.GetStream();
        await stream.WriteAsync(bytes, Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            while (received.Length < expect)
            {
                var n = await stream.ReadAsync(buffer, timeout.Token);
                if (n == 0)
                {
                    break;
                }

                received.Write(buffer, 0, n);
            }
        }
        catch (IOException)
        {
            // A reset after the answer: what arrived is what counts.
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            // Still open after the wait (a kept-alive connection): what arrived is what counts.
        }

        return Encoding.Latin1.GetString(received.ToArray());
    }
}
