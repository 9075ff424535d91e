using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Matchlock.Integration.Tests;

/// <summary>
/// A long-lived sandbox's whole life with a service in it (issue: "detach → exec → port-forward
/// → allow-list → kill → rm"): <c>run -d -p</c> publishes a guest port before boot, a busybox
/// httpd in the guest serves 50 MB through <c>run -p</c> and through <c>port-forward</c>
/// (IPv4 and IPv6 loopback, many connections at once, bytes checked), a port nothing listens on
/// resets the client, an allow-list change takes effect for the guest's next request, and after
/// <c>kill</c> the sandbox is listed as stopped until <c>rm</c> leaves nothing. One VM boot.
/// </summary>
public sealed partial class PortForwardVmTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private const int Big = 50 * 1024 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<CliResult> Exec(string id, params string[] command) => home.RunAsync(["exec", id, "--", .. command]);

    [Fact]
    public async Task Forwarded_ports_carry_a_service_and_the_allow_list_changes_what_the_guest_reaches()
    {
        VmPrerequisites.Ensure();
        using var upstream = TinyHttpServer.Start();
        var run = await home.RunAsync(
            ["run", "-d", "--image", "busybox", "-p", "0:8080", "--network-intercept", "--add-host", "upstream.test:127.0.0.1"],
            timeout: TimeSpan.FromMinutes(2));
        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.Stdout.Trim();
        Process? forward = null;
        string[] published;
        try
        {
            published = ForwardingLine().Matches(run.Stderr).Select(m => m.Groups["endpoint"].Value).ToArray();
            Assert.True(published.Length == 2, run.Stderr); // 127.0.0.1 and [::1], the same free port
            var ready = await Exec(id, "sh", "-c",
                $"mkdir -p /www && head -c {Big} /dev/urandom > /www/big && echo hi > /www/index.html && httpd -p 8080 -h /www && sha256sum /www/big");
            Assert.True(ready.ExitCode == 0, ready.ToString());
            var digest = ready.Stdout.Split(' ')[0];

            // run -p: 50 MB intact over IPv4, a small page over IPv6.
            var v4 = published.Single(e => e.StartsWith("127.0.0.1:", StringComparison.Ordinal));
            var v6 = published.Single(e => e.StartsWith("[::1]:", StringComparison.Ordinal));
            Assert.Equal(digest, await Sha256OfGetAsync(v4, "/big"));
            Assert.Equal("hi\n", Encoding.ASCII.GetString(await GetAsync(v6, "/index.html")));

            // port-forward: its own listeners, relayed through the owner's control socket.
            forward = home.Start(["port-forward", id, "0:8080", "0:9999"]);
            forward.StandardInput.Close();
            var lines = new List<string>();
            // The original's lines, on stderr: stdout stays clean.
            while (lines.Count < 4 && await forward.StandardError.ReadLineAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct) is { } line)
            {
                lines.Add(line);
            }

            var endpoints = lines.Select(l => PortForwardLine().Match(l)).Where(m => m.Success).ToArray();
            Assert.True(endpoints.Length == 4, string.Join('\n', lines));
            var toHttpd = endpoints.Where(m => m.Groups["remote"].Value == "8080").Select(m => m.Groups["endpoint"].Value).ToArray();
            var toNothing = endpoints.First(m => m.Groups["remote"].Value == "9999").Groups["endpoint"].Value;

            Assert.Equal(digest, await Sha256OfGetAsync(toHttpd[0], "/big"));
            var many = await Task.WhenAll(Enumerable.Range(0, 24).Select(i => GetAsync(toHttpd[i % toHttpd.Length], "/index.html")));
            Assert.All(many, body => Assert.Equal("hi\n", Encoding.ASCII.GetString(body)));

            // Nothing listens on 9999 in the guest: the client gets a reset, the CLI says why.
            var reset = await Assert.ThrowsAnyAsync<Exception>(() => GetAsync(toNothing, "/"));
            Assert.True(reset is SocketException { SocketErrorCode: SocketError.ConnectionReset } or IOException, reset.ToString());

            // A local port already taken is refused at once with what to do.
            var taken = await home.RunAsync(["port-forward", id, $"{v4.Split(':')[1]}:8080", "--address", "127.0.0.1"]);
            Assert.True(taken.ExitCode == 125, taken.ToString());
            Assert.Contains("already in use", taken.Stderr, StringComparison.Ordinal);

            // The allow-list, changed at runtime, governs the guest's very next request.
            var url = $"http://upstream.test:{upstream.Port}/";
            Assert.NotEqual(0, (await Exec(id, "wget", "-q", "-O", "-", url)).ExitCode);
            Assert.Equal(0, (await home.RunAsync(["allow-list", "add", id, "upstream.test"])).ExitCode);
            var allowed = await Exec(id, "wget", "-q", "-O", "-", url);
            Assert.True(allowed.ExitCode == 0, allowed.ToString());
            Assert.Equal("upstream-ok", allowed.Stdout);
            Assert.Equal(0, (await home.RunAsync(["allow-list", "delete", id, "upstream.test"])).ExitCode);
            Assert.NotEqual(0, (await Exec(id, "wget", "-q", "-O", "-", url)).ExitCode);
            Assert.Equal(1, upstream.Requests);

            var kill = await home.RunAsync(["kill", id], timeout: TimeSpan.FromMinutes(1));
            Assert.True(kill.ExitCode == 0, kill.ToString());

            // The owner is gone: port-forward notices and ends; the published port is closed.
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct))
            {
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                await forward.WaitForExitAsync(timeout.Token);
            }

            Assert.Equal(125, forward.ExitCode);
            await Assert.ThrowsAsync<SocketException>(() => GetAsync(v4, "/index.html")); // run -p's listener went with its owner
        }
        finally
        {
            if (forward is { HasExited: false })
            {
                forward.Kill();
            }

            await home.RunAsync(["kill", id]);
        }

        // Stopped, not forgotten: listed with its history until rm.
        var ls = await home.RunAsync(["ls"]);
        Assert.Matches($"(?m)^{id}\\s+stopped\\s", ls.Stdout);
        var inspect = await home.RunAsync(["inspect", id]);
        using (var json = JsonDocument.Parse(inspect.Stdout))
        {
            Assert.Equal(
                ["creating", "running", "stopping", "stopped"],
                json.RootElement.GetProperty("history").EnumerateArray().Select(e => e.GetProperty("status").GetString()));
            var listeners = json.RootElement.GetProperty("lifecycle").GetProperty("resources").EnumerateArray()
                .Where(r => r.GetProperty("kind").GetString() == "listener").Select(r => r.GetProperty("value").GetString()).Order().ToArray();
            Assert.Equal(published.Select(e => $"{e} -> 8080").Order(), listeners);
        }

        var rm = await home.RunAsync(["rm", id]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.DoesNotContain(id, (await home.RunAsync(["ls"])).Stdout, StringComparison.Ordinal);
        home.AssertNothingLeft();
        Assert.False(File.Exists("/var/run/netns/matchlock-" + id), "the sandbox's network namespace was left behind");
    }

    [GeneratedRegex(@"(?m)^Forwarding (?<endpoint>\S+) -> sandbox:8080$")]
    private static partial Regex ForwardingLine();

    [GeneratedRegex(@"^Forwarding (?<endpoint>\S+) -> sandbox:(?<remote>\d+)$")]
    private static partial Regex PortForwardLine();

    private static async Task<string> Sha256OfGetAsync(string endpoint, string path) =>
        Convert.ToHexStringLower(SHA256.HashData(await GetAsync(endpoint, path)));

    /// <summary>A plain HTTP/1.0 GET on a raw socket (no client pooling between checks): the body.</summary>
    private static async Task<byte[]> GetAsync(string endpoint, string path)
    {
        var ep = IPEndPoint.Parse(endpoint);
        using var socket = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await socket.ConnectAsync(ep, timeout.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n"), SocketFlags.None, timeout.Token);
        using var response = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            response.Write(buffer, 0, n);
        }

        var all = response.ToArray();
        var headerEnd = all.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(headerEnd > 0, $"no HTTP response from {endpoint} ({all.Length} bytes)");
        Assert.StartsWith("HTTP/1.", Encoding.ASCII.GetString(all, 0, 8), StringComparison.Ordinal);
        Assert.Contains(" 200 ", Encoding.ASCII.GetString(all, 0, Math.Min(all.Length, 20)), StringComparison.Ordinal);
        return all[(headerEnd + 4)..];
    }

    /// <summary>Answers every request on 127.0.0.1 with "upstream-ok" and counts them.</summary>
    private sealed class TinyHttpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private int _requests;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Requests => Volatile.Read(ref _requests);

        public static TinyHttpServer Start()
        {
            var server = new TinyHttpServer();
            server._listener.Start();
            _ = Task.Run(server.LoopAsync);
            return server;
        }

        private async Task LoopAsync()
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptSocketAsync();
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        var buffer = new byte[8192];
                        var seen = new StringBuilder();
                        int n;
                        while (!seen.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && (n = await client.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                        {
                            seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                        }

                        Interlocked.Increment(ref _requests);
                        await client.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nupstream-ok"u8.ToArray(), SocketFlags.None);
                        client.Shutdown(SocketShutdown.Send);
                    }
                });
            }
        }

        public void Dispose() => _listener.Stop();
    }
}
