using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Network;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Matchlock.Integration.Tests.Network;

/// <summary>
/// One Debian guest (curl, python3) behind the whole sealed network: netns + nftables, our DNS,
/// the egress proxy with the sandbox CA, an allow-list, a secret, and an HTTPS "internet" that is a
/// Kestrel server on the host's 127.0.0.1, reached only because <c>--add-host</c> maps the test
/// names to loopback (the guest sees a 198.18/15 stand-in). Shared by the tests below: one boot.
/// </summary>
public sealed class SealedNetworkFixture : IAsyncLifetime
{
    public const string SecretValue = "real-secret-value-7d1c";

    private readonly MatchlockHome _home = new();
    private WebApplication? _upstream;
    private CertificateAuthority? _upstreamCa;

    public Sandbox Sandbox { get; private set; } = null!;

    public int Port { get; private set; }

    /// <summary>Every request the upstream received: "METHOD host path?query | authorization".</summary>
    public ConcurrentQueue<string> Received { get; } = new();

    public string? SkipReason { get; private set; }

    /// <summary>Completed by the SSE test to let the upstream send its second event.</summary>
    public TaskCompletionSource SseGate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask InitializeAsync()
    {
        await _home.InitializeAsync();
        if (VmPrerequisites.Missing() is not null)
        {
            return;
        }

        SkipReason = await _home.ImportDebianTestImageAsync();
        if (SkipReason is not null)
        {
            return;
        }

        _upstreamCa = CertificateAuthority.Create("Matchlock test upstream CA");
        var caFile = Path.Combine(_home.Root, "upstream-ca.pem");
        await File.WriteAllTextAsync(caFile, _upstreamCa.CertificatePem);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http1AndHttp2;
            l.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificateSelector = (_, name) => _upstreamCa.IssueLeaf(HostName.Parse(name ?? "api.test")),
            });
        }));
        _upstream = builder.Build();
        _upstream.UseWebSockets();
        _upstream.Run(async ctx =>
        {
            var r = ctx.Request;
            Received.Enqueue($"{r.Method} {r.Host} {r.Path}{r.QueryString} | {r.Headers.Authorization}");
            if (r.Path == "/ws" && ctx.WebSockets.IsWebSocketRequest)
            {
                using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
                var buffer = new byte[4096];
                var message = await ws.ReceiveAsync(buffer, CancellationToken.None);
                await ws.SendAsync(buffer.AsMemory(0, message.Count), message.MessageType, true, CancellationToken.None);
                await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                return;
            }

            if (r.Path == "/sse")
            {
                ctx.Response.ContentType = "text/event-stream";
                await ctx.Response.WriteAsync("data: hello one\n\n");
                await ctx.Response.Body.FlushAsync();
                await SseGate.Task.WaitAsync(TimeSpan.FromSeconds(60));
                await ctx.Response.WriteAsync("data: hello two\n\n");
                return;
            }

            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"hello from {r.Host.Host} over {r.Protocol}\n");
        });
        await _upstream.StartAsync();
        Port = new Uri(_upstream.Urls.Single()).Port;

        var spec = new SandboxSpec
        {
            Image = "debian-test",
            MemoryMb = 512,
            NoNetwork = false,
            Network = new SandboxNetworkSpec
            {
                AllowHosts = ["api.test", "*.glob.test"],
                Secrets = [$"API_KEY={SecretValue}@api.test"],
                AddHosts = [.. new[] { "api.test", "other.test", "x.glob.test" }.Select(h => KeyValuePair.Create(h, IPAddress.Loopback))],
                UpstreamCaFile = caFile,
                Hooks =
                [
                    new HookRule { Name = "shout", Phase = HookPhase.After, Action = HookAction.Mutate, Path = "/sse", BodyReplacements = [new BodyReplacement("hello", "HOWDY")] },
                    new HookRule { Name = "no-admin", Phase = HookPhase.Before, Action = HookAction.Block, Path = "/admin" },
                ],
            },
        };
        var env = SandboxEnvironment.CreateDefault() with
        {
            Images = new ImageStore(Path.Combine(_home.Root, "images")),
            VmsDir = _home.VmsDir,
            StatePath = Path.Combine(_home.Root, "state.db"),
        };
        Sandbox = await Sandbox.CreateAsync(spec, env, TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Sandbox is not null)
        {
            await Sandbox.DisposeAsync();
        }

        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }

        _upstreamCa?.Dispose();
        await _home.DisposeAsync();
    }

    public void Ensure()
    {
        VmPrerequisites.Ensure();
        if (SkipReason is not null)
        {
            HostPrerequisites.SkipOrFail(SkipReason);
        }
    }

    /// <summary>
    /// The VM's events.jsonl once it contains <paramref name="expected"/> (the log is written in the
    /// background, batch by batch), or as it is after 10 s.
    /// </summary>
    public async Task<string> EventsContainingAsync(string expected)
    {
        var path = Path.Combine(Sandbox.Directory, "events.jsonl");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var text = File.Exists(path) ? await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken) : "";
            if (text.Contains(expected, StringComparison.Ordinal) || clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                return text;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Runs a shell snippet in the guest; returns (exit code, stdout + stderr).</summary>
    public async Task<(int Code, string Output)> ShAsync(string script)
    {
        using var output = new MemoryStream();
        var result = await Sandbox.ExecAsync(
            new ExecSpec { Argv = ["/bin/sh", "-c", script], Env = ["PATH=/usr/local/bin:/usr/bin:/bin"] },
            null, output, output, TestContext.Current.CancellationToken);
        return (result.ExitCode, Encoding.UTF8.GetString(output.ToArray()));
    }
}

public sealed class SealedNetworkTests(SealedNetworkFixture net) : IClassFixture<SealedNetworkFixture>
{
    private string Url(string host, string path = "/") => $"https://{host}:{net.Port}{path}";

    [Fact]
    public async Task An_allowed_host_answers_through_the_proxy_and_curl_python_and_h2_trust_the_sandbox_ca()
    {
        net.Ensure();
        var curl = await net.ShAsync($"curl -sS {Url("api.test", "/hello")}");
        Assert.True(curl.Code == 0, curl.Output);
        Assert.Contains("hello from api.test", curl.Output, StringComparison.Ordinal);

        var h2 = await net.ShAsync($"curl -sS --http2 -o /dev/null -w '%{{http_version}}' {Url("api.test")}");
        Assert.Equal("2", h2.Output.Trim());

        var python = await net.ShAsync($"python3 -c \"import urllib.request; print(urllib.request.urlopen('{Url("api.test", "/py")}').read().decode())\"");
        Assert.True(python.Code == 0, python.Output);
        Assert.Contains("hello from api.test", python.Output, StringComparison.Ordinal);

        // The guest resolved the loopback mapping to a stand-in that leaves through its NIC.
        Assert.StartsWith("198.18.", (await net.ShAsync("getent hosts api.test")).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_outside_the_allow_list_gets_a_readable_403_and_the_upstream_sees_nothing()
    {
        net.Ensure();
        var r = await net.ShAsync($"curl -sS -w '\\n%{{http_code}}' {Url("other.test", "/blocked-path")}");
        Assert.EndsWith("403", r.Output.Trim(), StringComparison.Ordinal);
        Assert.Contains("other.test", r.Output, StringComparison.Ordinal);
        Assert.Contains("allow-list", r.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(net.Received, line => line.Contains("/blocked-path", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Secrets_are_placeholders_in_the_guest_and_real_only_on_the_wire_to_their_host()
    {
        net.Ensure();
        var env = await net.ShAsync("echo \"$API_KEY\"; cat /proc/self/environ | tr '\\0' '\\n' | grep -c real-secret || true");
        var placeholder = env.Output.Split('\n')[0].Trim();
        Assert.Matches("^SANDBOX_SECRET_[0-9a-f]{32}$", placeholder);
        Assert.Equal("0", env.Output.Split('\n')[1].Trim());
        Assert.DoesNotContain(SealedNetworkFixture.SecretValue, (await net.ShAsync("grep -rs real-secret /etc /tmp /root; true")).Output, StringComparison.Ordinal);

        var sent = await net.ShAsync($"curl -sS -H \"Authorization: Bearer $API_KEY\" \"{Url("api.test", "/secret")}?key=$API_KEY\"");
        Assert.True(sent.Code == 0, sent.Output);
        var received = Assert.Single(net.Received, line => line.Contains("/secret", StringComparison.Ordinal));
        Assert.Contains($"key={SealedNetworkFixture.SecretValue}", received, StringComparison.Ordinal);
        Assert.Contains($"Bearer {SealedNetworkFixture.SecretValue}", received, StringComparison.Ordinal);

        // Allowed host, but not one the secret names: refused, nothing sent.
        var leak = await net.ShAsync($"curl -sS -w '\\n%{{http_code}}' -H \"X-Key: $API_KEY\" {Url("x.glob.test", "/leak")}");
        Assert.EndsWith("403", leak.Output.Trim(), StringComparison.Ordinal);
        Assert.DoesNotContain(net.Received, line => line.Contains("/leak", StringComparison.Ordinal));

        var events = await net.EventsContainingAsync("secret_injected");
        Assert.Contains("secret_injected", events, StringComparison.Ordinal);
        Assert.Contains("API_KEY", events, StringComparison.Ordinal);
        Assert.DoesNotContain(SealedNetworkFixture.SecretValue, events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Names_the_policy_cannot_allow_get_nxdomain_and_the_refusal_is_an_event()
    {
        net.Ensure();
        var r = await net.ShAsync("getent hosts exfiltrate-this.forbidden.example; echo rc=$?");
        Assert.Contains("rc=2", r.Output, StringComparison.Ordinal);

        var events = await net.EventsContainingAsync("exfiltrate-this.forbidden.example");
        Assert.Contains("exfiltrate-this.forbidden.example", events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Direct_ip_and_metadata_destinations_are_refused_without_leaving_the_host()
    {
        net.Ensure();
        // The proxy answers plain HTTP itself: the policy refuses before any upstream connection.
        var metadata = await net.ShAsync("curl -sS -m 10 -w '\\n%{http_code}' http://169.254.169.254/latest/meta-data/");
        Assert.EndsWith("403", metadata.Output.Trim(), StringComparison.Ordinal);
        var ip = await net.ShAsync("curl -sS -m 10 -w '\\n%{http_code}' http://192.0.2.10/");
        Assert.EndsWith("403", ip.Output.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_sent_events_arrive_one_by_one_with_the_hook_transform_applied()
    {
        net.Ensure();
        var ct = TestContext.Current.CancellationToken;
        await using var session = await net.Sandbox.StartExecAsync(
            new ExecSpec { Argv = ["curl", "-sS", "-N", Url("api.test", "/sse")], Env = ["PATH=/usr/bin:/bin"] }, ct);
        var reader = new StreamReader(session.Stdout);
        // The first event must arrive while the upstream still holds the second back: not buffered.
        var first = await reader.ReadLineAsync(ct).AsTask().WaitAsync(TimeSpan.FromSeconds(60), ct);
        Assert.Equal("data: HOWDY one", first);
        net.SseGate.TrySetResult();
        var rest = await reader.ReadToEndAsync(ct);
        Assert.Contains("data: HOWDY two", rest, StringComparison.Ordinal);
        Assert.Equal(0, (await session.WaitAsync(ct)).ExitCode);
    }

    [Fact]
    public async Task A_websocket_echo_goes_through_the_proxy_and_block_hooks_answer_403()
    {
        net.Ensure();
        // No WebSocket client in the image: a hand-made upgrade and one masked text frame over Python's ssl.
        var script = $$"""
            import base64, os, socket, ssl
            ctx = ssl.create_default_context()
            s = ctx.wrap_socket(socket.create_connection(("api.test", {{net.Port}})), server_hostname="api.test")
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(("GET /ws HTTP/1.1\r\nHost: api.test:{{net.Port}}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            print(head.split(b"\r\n")[0].decode())
            payload = b"ping through the sandbox"
            mask = os.urandom(4)
            s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            frame = s.recv(2)
            n = frame[1] & 0x7f
            data = b""
            while len(data) < n:
                data += s.recv(n - len(data))
            print(data.decode())
            """;
        var ws = await net.ShAsync($"python3 - <<'EOF'\n{script}\nEOF");
        Assert.True(ws.Code == 0, ws.Output);
        Assert.Contains("101", ws.Output, StringComparison.Ordinal);
        Assert.Contains("ping through the sandbox", ws.Output, StringComparison.Ordinal);

        var admin = await net.ShAsync($"curl -sS -w '\n%{{http_code}}' {Url("api.test", "/admin")}");
        Assert.EndsWith("403", admin.Output.Trim(), StringComparison.Ordinal);
        Assert.DoesNotContain(net.Received, line => line.Contains("/admin", StringComparison.Ordinal));
    }
}
