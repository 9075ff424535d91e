using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Core.Tests.Network;

/// <summary>
/// Loopback tier: a real proxy on 127.0.0.1, a real Kestrel upstream on 127.0.0.1, a "guest" client
/// that trusts only the sandbox CA; the test plays SO_ORIGINAL_DST. Nothing leaves the machine.
/// Loopback upstreams are legal only through --add-host (or AllowPrivate), which is itself under test.
/// </summary>
public sealed class EgressProxyTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly TempDir _dir = new();
    private LoopbackUpstream _upstream = null!;

    public async ValueTask InitializeAsync() => _upstream = await LoopbackUpstream.StartAsync(_dir.Path);

    public async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _dir.Dispose();
    }

    private static NetworkPolicy Policy(params string[] allow)
    {
        var policy = new NetworkPolicy(intercept: true, HostPattern.ParseList(allow));
        policy.AddHost(HostName.Parse("api.test"), IPAddress.Loopback);
        return policy;
    }

    private string Api(string pathAndQuery = "/echo") => $"https://api.test:{_upstream.HttpsPort}{pathAndQuery}";

    [Fact]
    public async Task AllowedHostIsForwardedOverTlsToTheOriginalPort()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream);
        using var guest = proxy.Guest(_upstream.Https);
        using var response = await guest.GetAsync(Api("/echo?x=1"), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains($"host=api.test:{_upstream.HttpsPort}", body, StringComparison.Ordinal);
        Assert.Contains("query=?x=1", body, StringComparison.Ordinal);
        Assert.Equal("yes", response.Headers.GetValues("X-Upstream").Single());
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Completed && e.Status == 200 && e.Host == "api.test" && e.BytesDown > 0);
    }

    [Fact]
    public async Task PlainHttpOnAnyPortIsInterceptedToo()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream);
        using var guest = proxy.Guest(_upstream.Http);
        var body = await guest.GetStringAsync($"http://api.test:{_upstream.HttpPort}/plain", Ct);
        Assert.Contains("path=/plain", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostNotInAllowListGets403WithAReadableReasonAndNothingIsSent()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("other.test"), _upstream);
        using var guest = proxy.Guest(_upstream.Https);
        using var response = await guest.GetAsync(Api(), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("api.test is not in the sandbox's allow-list (other.test)", body, StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Denied && e.Host == "api.test");
    }

    [Fact]
    public async Task GlobsAreCaseInsensitive()
    {
        var policy = Policy("*.TEST");
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        using var guest = proxy.Guest(_upstream.Https);
        using var response = await guest.GetAsync($"https://API.Test:{_upstream.HttpsPort}/echo", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task RuntimeAllowAndDisallowTakeEffectOnTheNextRequest()
    {
        var policy = Policy();
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        using var guest = proxy.Guest(_upstream.Https);
        Assert.Equal(HttpStatusCode.Forbidden, (await guest.GetAsync(Api(), Ct)).StatusCode);
        policy.Allow(["api.test"]);
        Assert.Equal(HttpStatusCode.OK, (await guest.GetAsync(Api(), Ct)).StatusCode);
        policy.Disallow(["api.test"]);
        Assert.Equal(HttpStatusCode.Forbidden, (await guest.GetAsync(Api(), Ct)).StatusCode);
    }

    [Fact]
    public async Task SniThatDiffersFromHostIsRefused()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test", "good.test"), _upstream);
        proxy.Destination = _upstream.Https;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(proxy.Listener, Ct);
        await using var tls = new SslStream(tcp.GetStream(), false, proxy.TrustsSandboxCa);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "good.test" }, Ct);
        await tls.WriteAsync(Encoding.ASCII.GetBytes("GET /echo HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n"), Ct);
        var text = await new StreamReader(tls).ReadToEndAsync(Ct);
        Assert.StartsWith("HTTP/1.1 403", text, StringComparison.Ordinal);
        Assert.Contains("the TLS server name (SNI) good.test does not match the Host api.test", text, StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task SecretIsSubstitutedInHeaderAndQueryForItsHostOnly()
    {
        const string Value = "real-value-7d1f";
        var secrets = SandboxSecrets.Create([new SecretSpec("API_KEY", Value, [HostPattern.Parse("api.test")])]);
        var placeholder = secrets.GuestEnvironment["API_KEY"];
        var eventsFile = _dir.Combine("events.jsonl");
        await using (var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream, secrets, eventsFile: eventsFile))
        {
            using var guest = proxy.Guest(_upstream.Https);
            using var request = new HttpRequestMessage(HttpMethod.Get, Api($"/echo?key={placeholder}"));
            request.Headers.TryAddWithoutValidation("Authorization", $"Bearer {placeholder}");
            request.Headers.TryAddWithoutValidation("X-Key", placeholder);
            using var response = await guest.SendAsync(request, Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains($"authorization=Bearer {Value}", body, StringComparison.Ordinal);
            Assert.Contains($"x-key={Value}", body, StringComparison.Ordinal);
            Assert.Contains($"query=?key={Value}", body, StringComparison.Ordinal);
            Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.SecretInjected && e.Secret == "API_KEY");
        }

        var lines = await File.ReadAllLinesAsync(eventsFile, Ct);
        Assert.Contains(lines, l => l.Contains("\"kind\":\"secret_injected\"", StringComparison.Ordinal) && l.Contains("\"secret\":\"API_KEY\"", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"kind\":\"completed\"", StringComparison.Ordinal) && l.Contains("\"status\":200", StringComparison.Ordinal));
        Assert.All(lines, l => JsonDocument.Parse(l).Dispose());
        Assert.DoesNotContain(Value, await File.ReadAllTextAsync(eventsFile, Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlaceholderSentToAnotherHostIs403AndNothingIsSent()
    {
        const string Value = "real-value-99aa";
        var secrets = SandboxSecrets.Create([new SecretSpec("API_KEY", Value, [HostPattern.Parse("elsewhere.test")])]);
        var placeholder = secrets.GuestEnvironment["API_KEY"];
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test", "elsewhere.test"), _upstream, secrets);
        using var guest = proxy.Guest(_upstream.Https);
        using var request = new HttpRequestMessage(HttpMethod.Get, Api());
        request.Headers.TryAddWithoutValidation("X-Key", placeholder);
        using var response = await guest.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("placeholder for secret API_KEY", body, StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
        var events = proxy.Snapshot();
        Assert.Contains(events, e => e.Kind == NetworkEventKind.Denied && e.Secret == "API_KEY");
        Assert.DoesNotContain(events, e => JsonSerializer.Serialize(e, NetworkEventJsonContext.Default.NetworkEvent).Contains(Value, StringComparison.Ordinal));
    }

    [Fact]
    public async Task DirectIpAndMetadataDestinationsAreRefused()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("*")]);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        using var guest = proxy.Guest(_upstream.Https);
        using var direct = await guest.GetAsync($"http://127.0.0.1:{_upstream.HttpPort}/", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, direct.StatusCode);
        Assert.Contains("loopback", await direct.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        proxy.Destination = new IPEndPoint(IPAddress.Parse("169.254.169.254"), 80);
        using var metadata = await guest.GetAsync("http://169.254.169.254/latest/meta-data/", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, metadata.StatusCode);
        Assert.Contains("cloud metadata", await metadata.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task AddHostMappingAllowsALoopbackUpstreamByIp()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("127.0.0.1")]);
        policy.AddHost(HostName.Parse("127.0.0.1"), IPAddress.Loopback);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        using var guest = proxy.Guest(_upstream.Http);
        var body = await guest.GetStringAsync($"http://127.0.0.1:{_upstream.HttpPort}/ip", Ct);
        Assert.Contains("path=/ip", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ANameIsOnlyConnectedToItsPinnedAddresses()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("api.test")], allowPrivate: true);
        policy.Pin(HostName.Parse("api.test"), [IPAddress.Parse("127.0.0.2")]);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        using var guest = proxy.Guest(_upstream.Https); // the guest went to 127.0.0.1, not the pinned 127.0.0.2
        using var response = await guest.GetAsync(Api(), Ct);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("resolves to 127.0.0.2 in this sandbox, not 127.0.0.1", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);

        policy.Pin(HostName.Parse("api.test"), [IPAddress.Loopback]);
        Assert.Equal(HttpStatusCode.OK, (await guest.GetAsync(Api(), Ct)).StatusCode);
    }

    [Fact]
    public async Task Http2IsNegotiatedWithAlpn()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream);
        using var guest = proxy.Guest(_upstream.Https, HttpVersion.Version20);
        using var response = await guest.GetAsync(Api(), Ct);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Allowed && e.Protocol == "HTTP/2");
    }

    [Fact]
    public async Task WebSocketEchoesThroughTheProxy()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream);
        proxy.Destination = _upstream.Https;
        using var invoker = new HttpMessageInvoker(proxy.GuestHandler());
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"wss://api.test:{_upstream.HttpsPort}/ws"), invoker, Ct);
        await ws.SendAsync("ping over the proxy"u8.ToArray(), WebSocketMessageType.Text, true, Ct);
        var buffer = new byte[1024];
        var result = await ws.ReceiveAsync(buffer, Ct);
        Assert.Equal("ping over the proxy", Encoding.UTF8.GetString(buffer, 0, result.Count));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Ct);
    }

    [Fact]
    public async Task SseIsTransformedAndDeliveredEventByEvent()
    {
        HookRule[] hooks = [new HookRule { Phase = HookPhase.After, Action = HookAction.Mutate, Path = "/sse", BodyReplacements = [new BodyReplacement("hello", "HOWDY")] }];
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream, hooks: hooks);
        using var guest = proxy.Guest(_upstream.Https);
        using var response = await guest.GetAsync(Api("/sse"), HttpCompletionOption.ResponseHeadersRead, Ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));

        // The upstream holds its second event until we release it: seeing the first proves it was not buffered.
        Assert.Equal("data: HOWDY one", await reader.ReadLineAsync(timeout.Token));
        Assert.False(_upstream.SseGate.Task.IsCompleted);
        _upstream.SseGate.SetResult();
        var rest = await reader.ReadToEndAsync(timeout.Token);
        Assert.Contains("event: x\ndata: HOWDY two\n", rest, StringComparison.Ordinal);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.HookApplied && e.Hook == "hook_0");
    }

    [Fact]
    public async Task BeforeHooksBlockMutateAndAllow()
    {
        HookRule[] hooks =
        [
            new HookRule { Phase = HookPhase.Before, Action = HookAction.Allow, Path = "/free" },
            new HookRule { Name = "no-admin", Phase = HookPhase.Before, Action = HookAction.Block, Path = "/admin" },
            new HookRule { Phase = HookPhase.Before, Action = HookAction.Block, Methods = ["DELETE"] },
            new HookRule
            {
                Phase = HookPhase.Before,
                Action = HookAction.Mutate,
                Path = "/old",
                SetHeaders = new Dictionary<string, string> { ["X-Added"] = "by-hook" },
                DeleteHeaders = ["X-Drop"],
                SetQuery = new Dictionary<string, string> { ["q"] = "set" },
                DeleteQuery = ["gone"],
                RewritePath = "/new",
            },
            new HookRule { Phase = HookPhase.After, Action = HookAction.Mutate, Path = "/new", SetResponseHeaders = new Dictionary<string, string> { ["X-Hooked"] = "1" }, DeleteResponseHeaders = ["X-Upstream"] },
        ];
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream, hooks: hooks);
        using var guest = proxy.Guest(_upstream.Https);

        using var blocked = await guest.GetAsync(Api("/admin/users"), Ct);
        Assert.Equal(HttpStatusCode.Forbidden, blocked.StatusCode);
        Assert.Contains("blocked by hook rule no-admin", await blocked.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await guest.DeleteAsync(Api("/x"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await guest.DeleteAsync(Api("/free"), Ct)).StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Get, Api("/old?gone=1&keep=2"));
        request.Headers.Add("X-Drop", "please");
        using var mutated = await guest.SendAsync(request, Ct);
        var body = await mutated.Content.ReadAsStringAsync(Ct);
        Assert.Contains("path=/new", body, StringComparison.Ordinal);
        Assert.Contains("keep=2", body, StringComparison.Ordinal);
        Assert.Contains("q=set", body, StringComparison.Ordinal);
        Assert.DoesNotContain("gone", body, StringComparison.Ordinal);
        Assert.Contains("x-added=by-hook", body, StringComparison.Ordinal);
        Assert.Contains("x-drop=\n", body, StringComparison.Ordinal);
        Assert.Equal("1", mutated.Headers.GetValues("X-Hooked").Single());
        Assert.False(mutated.Headers.Contains("X-Upstream"));
        Assert.DoesNotContain(_upstream.Requests, r => r.Contains("/admin", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BodyReplacementOnWholeBodiesAndFailingHooksFailClosed()
    {
        HookRule[] hooks =
        [
            new HookRule { Phase = HookPhase.After, Action = HookAction.Mutate, Path = "/echo", BodyReplacements = [new BodyReplacement("method=GET", "method=REPLACED")] },
            new HookRule { Phase = HookPhase.Before, Action = HookAction.Mutate, Path = "/broken", RewritePath = "no-slash" },
        ];
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream, hooks: hooks);
        using var guest = proxy.Guest(_upstream.Https);
        Assert.Contains("method=REPLACED", await guest.GetStringAsync(Api(), Ct), StringComparison.Ordinal);
        using var broken = await guest.GetAsync(Api("/broken"), Ct);
        Assert.Equal(HttpStatusCode.BadGateway, broken.StatusCode);
        Assert.DoesNotContain(_upstream.Requests, r => r.Contains("broken", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RawTcpIsRelayedOnlyToAllowedDestinations()
    {
        await using var echo = RecordingTcpServer.Start(banner: null, echo: true);
        var echoEndPoint = echo.EndPoint;

        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("echo.test")]);
        await using var proxy = await ProxyHarness.StartAsync(policy, _upstream);
        proxy.Destination = echoEndPoint;

        Assert.StartsWith("HTTP/1.1 400", await TalkAsync(proxy.Listener, "hello raw\n"), StringComparison.Ordinal);
        Assert.Contains(proxy.Snapshot(), e => e.Kind == NetworkEventKind.Denied && e.Protocol == "tcp");

        // A name on the allow-list and mapped to the address is still not enough: raw TCP needs its own rule.
        policy.AddHost(HostName.Parse("echo.test"), IPAddress.Loopback);
        Assert.StartsWith("HTTP/1.1 400", await TalkAsync(proxy.Listener, "hello raw\n"), StringComparison.Ordinal);

        var ruled = new NetworkPolicy(intercept: true, [HostPattern.Parse("echo.test")], allowTcp: [TcpRule.Parse($"echo.test:{echoEndPoint.Port}")]);
        ruled.AddHost(HostName.Parse("echo.test"), IPAddress.Loopback);
        await using var second = await ProxyHarness.StartAsync(ruled, _upstream);
        second.Destination = echoEndPoint;
        Assert.Equal("hello raw\n", await TalkAsync(second.Listener, "hello raw\n"));
    }

    private static async Task<string> TalkAsync(IPEndPoint proxy, string text)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(proxy, Ct);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text), Ct);
        var buffer = new byte[256];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var received = new StringBuilder();
        while (received.Length < text.Length)
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        return received.ToString();
    }

    [Fact]
    public async Task CurlTrustsTheSandboxCaAndSpeaksHttp2ThroughTheProxy()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream);
        proxy.Destination = _upstream.Https;
        var caFile = _dir.Combine("sandbox-ca.pem");
        await File.WriteAllTextAsync(caFile, proxy.Authority.CertificatePem, Ct);
        var port = _upstream.HttpsPort;
        var (code, output) = await CertificateAuthorityTests.RunAsync("curl",
        [
            "-sS", "--noproxy", "*", "--http2", "--cacert", caFile,
            "--connect-to", $"api.test:{port}:127.0.0.1:{proxy.Listener.Port}",
            "-w", "\nversion=%{http_version}", $"https://api.test:{port}/curl",
        ]);
        Assert.True(code == 0, output);
        Assert.Contains("path=/curl", output, StringComparison.Ordinal);
        Assert.Contains("version=2", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamsALargeBodyWithoutBufferingIt()
    {
        await using var proxy = await ProxyHarness.StartAsync(Policy("api.test"), _upstream);
        using var guest = proxy.Guest(_upstream.Https);
        var before = GC.GetTotalAllocatedBytes();
        var sw = Stopwatch.StartNew();
        using var response = await guest.GetAsync(Api("/big?n=67108864"), HttpCompletionOption.ResponseHeadersRead, Ct);
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, Ct)) > 0)
        {
            total += n;
        }

        Assert.Equal(64L << 20, total);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30));
        _ = before;
    }
}
