using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Matchlock.Tests;

namespace Matchlock.Integration.Tests.Rpc;

/// <summary>
/// <c>matchlock rpc</c> end to end with real VMs (the SDKs' own end-to-end tests and examples
/// cover the everyday methods): the rpc's sandbox is a first-class one (ls, exec, kill from the
/// CLI), cancel stops the guest's process, a vanished or SIGKILLed client leaves nothing that
/// <c>rm</c> cannot release, and callback hooks fail closed. Four VM boots.
/// </summary>
public sealed class RpcVmTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_rpc_sandbox_answers_the_cli_cancel_kills_the_guest_process_and_kill_ends_it()
    {
        VmPrerequisites.Ensure();
        await using var rpc = new RpcClient(home);
        var id = (await rpc.CallAsync("create", new { image = "busybox", network = new { no_network = true } })).GetProperty("id").GetString()!;

        // 50 commands at once: each answer whole, on its own line, with its own output.
        var ids = new List<(long Id, int N)>();
        for (var n = 0; n < 50; n++)
        {
            ids.Add((await rpc.SendAsync(n % 2 == 0 ? "exec" : "exec_stream", new { command = $"echo out-{n}" }), n));
        }

        foreach (var (request, n) in ids)
        {
            var reply = await rpc.AnswerAsync(request);
            Assert.True(reply.TryGetProperty("result", out var result), reply.ToString());
            Assert.Equal(0, result.GetProperty("exit_code").GetInt32());
            var output = n % 2 == 0
                ? RpcClient.Text(result.GetProperty("stdout"))
                : string.Concat(rpc.Notifications.Where(m => m.TryGetProperty("method", out var method) && method.GetString() == "exec_stream.stdout" && m.GetProperty("params").GetProperty("id").GetInt64() == request)
                    .Select(m => RpcClient.Text(m.GetProperty("params").GetProperty("data"))));
            Assert.Equal($"out-{n}\n", output);
        }

        var ls = await home.RunAsync(["ls"]);
        Assert.Matches($@"{id}\s+running", ls.Stdout);
        var viaCli = await home.RunAsync(["exec", id, "--", "echo", "through the owner"]);
        Assert.True(viaCli.ExitCode == 0, viaCli.ToString());
        Assert.Equal("through the owner\n", viaCli.Stdout);

        // cancel: the guest's command is stopped (SIGTERM to its group), and the exec answers -32003.
        var sleeping = await rpc.SendAsync("exec", new { command = "echo $$ > /tmp/pid; exec sleep 300" });
        await Eventually.Until(async () => (await rpc.CallAsync("exec", new { command = "cat /tmp/pid" })).GetProperty("stdout").GetString() is { Length: > 0 }, TimeSpan.FromSeconds(30), "the command to start");
        var cancel = await rpc.CallAsync("cancel", new { id = sleeping });
        Assert.True(cancel.GetProperty("cancelled").GetBoolean());
        var answer = await rpc.AnswerAsync(sleeping, TimeSpan.FromSeconds(30));
        Assert.Equal(-32003, answer.GetProperty("error").GetProperty("code").GetInt32());
        var alive = await rpc.CallAsync("exec", new { command = "kill -0 $(cat /tmp/pid) 2>/dev/null && echo alive || echo gone" });
        Assert.Equal("gone\n", RpcClient.Text(alive.GetProperty("stdout")));

        // kill from the CLI stops it; the rpc says why from then on.
        var kill = await home.RunAsync(["kill", id]);
        Assert.True(kill.ExitCode == 0, kill.ToString());
        var (code, message) = await rpc.FailAsync("exec", new { command = "true" });
        Assert.Equal(-32000, code);
        Assert.Contains("kill", message, StringComparison.Ordinal);
        await rpc.CallAsync("close", new { timeout_seconds = 2 });
        Assert.Equal(0, await rpc.EndAsync(TimeSpan.FromSeconds(20)));

        var rm = await home.RunAsync(["rm", id]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Close_answers_within_the_clients_wait_and_leaves_the_sandbox_listed_until_rm()
    {
        VmPrerequisites.Ensure();
        await using var rpc = new RpcClient(home);
        var id = (await rpc.CallAsync("create", new { image = "busybox", network = new { no_network = true } })).GetProperty("id").GetString()!;
        var running = await rpc.SendAsync("exec_stream", new { command = "while true; do echo tick; sleep 1; done" });

        // The original Python client waits timeout + 1 s for this answer, then kills the process.
        var clock = Stopwatch.StartNew();
        await rpc.CallAsync("close", new { timeout_seconds = 2.0 }, bound: TimeSpan.FromSeconds(3));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"close took {clock.Elapsed}");
        Assert.True(rpc.AnsweredEarly(running), "the stream's answer must come before close's");
        Assert.Equal(0, await rpc.EndAsync(TimeSpan.FromSeconds(20)));

        Assert.Matches($@"{id}\s+stopped", (await home.RunAsync(["ls"])).Stdout);
        Assert.Empty(home.QemuProcesses());
        var rm = await home.RunAsync(["rm", id]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task A_client_that_vanishes_mid_exec_or_a_sigkilled_rpc_leaves_nothing_rm_cannot_release()
    {
        VmPrerequisites.Ensure();

        // The client goes away (its end of stdin closes) while a command runs: a clean stop.
        string vanished;
        await using (var rpc = new RpcClient(home))
        {
            vanished = (await rpc.CallAsync("create", new { image = "busybox", network = new { no_network = true } })).GetProperty("id").GetString()!;
            await rpc.SendAsync("exec", new { command = "sleep 300" });
            Assert.Equal(0, await rpc.EndAsync(TimeSpan.FromSeconds(30)));
        }

        Assert.Matches($@"{vanished}\s+stopped", (await home.RunAsync(["ls"])).Stdout);

        // SIGKILL: nothing runs on (QEMU dies with its parent), and rm releases the rest.
        string killed;
        await using (var rpc = new RpcClient(home))
        {
            killed = (await rpc.CallAsync("create", new { image = "busybox" })).GetProperty("id").GetString()!;
            rpc.Process.Kill();
            await rpc.Process.WaitForExitAsync(Ct);
        }

        await Eventually.Until(() => home.QemuProcesses().Count == 0, TimeSpan.FromSeconds(30), "QEMU to die with its owner");
        foreach (var id in new[] { vanished, killed })
        {
            var rm = await home.RunAsync(["rm", id]);
            Assert.True(rm.ExitCode == 0, rm.ToString());
        }

        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Callback_hooks_change_requests_and_a_failing_or_late_hook_blocks_them()
    {
        VmPrerequisites.Ensure();
        // A loopback upstream that answers any Host (the guest names it up.test) and records what arrived.
        using var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        var port = ((IPEndPoint)upstream.LocalEndpoint).Port;
        var seen = new List<string>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                TcpClient client;
                try
                {
                    client = await upstream.AcceptTcpClientAsync(Ct);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
                {
                    return;
                }

                using (client)
                {
                    var stream = client.GetStream();
                    var head = new StringBuilder();
                    var buffer = new byte[4096];
                    while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var n = await stream.ReadAsync(buffer, Ct);
                        if (n == 0)
                        {
                            break;
                        }

                        head.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }

                    var lines = head.ToString().Split("\r\n");
                    string Header(string name) => lines.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))?[(name.Length + 1)..].Trim() ?? "";
                    lock (seen)
                    {
                        seen.Add($"{lines[0].Split(' ')[1]} x-from-hook={Header("X-From-Hook")} x-guest={Header("X-Guest")}");
                    }

                    await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 17\r\nConnection: close\r\n\r\nupstream says hi\n"u8.ToArray(), Ct);
                }
            }
        }, Ct);

        // The SDK side: a UNIX socket answering each callback; /slow never answers in time.
        var socketPath = Path.Combine(home.Root, "hooks.sock");
        using var hooks = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        hooks.Bind(new UnixDomainSocketEndPoint(socketPath));
        hooks.Listen(8);
        var calls = new List<JsonElement>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket connection;
                try
                {
                    connection = await hooks.AcceptAsync(Ct);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    using (connection)
                    {
                        await using var stream = new NetworkStream(connection);
                        using var reader = new StreamReader(stream);
                        var request = JsonDocument.Parse((await reader.ReadLineAsync(Ct))!).RootElement.Clone();
                        lock (calls)
                        {
                            calls.Add(request);
                        }

                        var path = request.GetProperty("path").GetString();
                        if (path == "/slow")
                        {
                            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
                        }

                        var reply = path switch
                        {
                            "/garbage" => "this is not json\n",
                            "/error" => """{"error":"the hook refused"}""" + "\n",
                            _ => """{"request":{"headers":{"X-From-Hook":["yes"]}}}""" + "\n",
                        };
                        await stream.WriteAsync(Encoding.UTF8.GetBytes(reply), Ct);
                    }
                });
            }
        }, Ct);

        await using var rpc = new RpcClient(home);
        var id = (await rpc.CallAsync("create", new
        {
            image = "busybox",
            network = new
            {
                allowed_hosts = new[] { "up.test" },
                add_hosts = new[] { new { host = "up.test", ip = "127.0.0.1" } },
                interception = new
                {
                    rules = new object[] { new { phase = "before", hosts = new[] { "up.test" }, callback_id = "network_hook_1", timeout_ms = 1000 } },
                    callback_socket = socketPath,
                },
            },
        })).GetProperty("id").GetString()!;

        string Fetch(string path) => $"wget -q -O- --header 'X-Guest: 1' http://up.test:{port}{path} 2>&1; echo status=$?";
        var ok = RpcClient.Text((await rpc.CallAsync("exec", new { command = Fetch("/fine") })).GetProperty("stdout"));
        Assert.Contains("upstream says hi", ok, StringComparison.Ordinal);
        foreach (var blocked in new[] { "/garbage", "/error", "/slow" })
        {
            var output = RpcClient.Text((await rpc.CallAsync("exec", new { command = Fetch(blocked) })).GetProperty("stdout"));
            Assert.Contains("403", output, StringComparison.Ordinal);
        }

        lock (seen)
        {
            // The hook's answer replaced the request's headers (X-Guest gone, X-From-Hook set); the blocked requests never arrived.
            Assert.Equal(["/fine x-from-hook=yes x-guest="], seen);
        }

        lock (calls)
        {
            var first = calls.First(c => c.GetProperty("path").GetString() == "/fine");
            Assert.Equal("network_hook_1", first.GetProperty("callback_id").GetString());
            Assert.Equal("before", first.GetProperty("phase").GetString());
            Assert.Equal("up.test", first.GetProperty("host").GetString());
            Assert.Equal("GET", first.GetProperty("method").GetString());
        }

        // The refusals were events the SDK sees.
        await rpc.CallAsync("exec", new { command = "true" }); // lets queued notifications arrive before the check
        var events = rpc.Notifications.Where(n => n.GetProperty("method").GetString() == "event").Select(n => n.GetProperty("params").GetProperty("network")).ToList();
        Assert.Contains(events, e => e.GetProperty("blocked").GetBoolean() && e.GetProperty("block_reason").GetString()!.Contains("did not answer", StringComparison.Ordinal));
        Assert.Contains(events, e => e.GetProperty("blocked").GetBoolean() && e.GetProperty("block_reason").GetString()!.Contains("the hook refused", StringComparison.Ordinal));
        Assert.Contains(events, e => !e.GetProperty("blocked").GetBoolean() && e.GetProperty("status_code").GetInt32() == 200);

        await rpc.CallAsync("close", new { timeout_seconds = 2 });
        await rpc.EndAsync(TimeSpan.FromSeconds(20));
        var rm = await home.RunAsync(["rm", id]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        home.AssertNothingLeft();
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
