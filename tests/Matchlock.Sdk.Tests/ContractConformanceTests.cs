using System.Text.Json;

namespace Matchlock.Sdk.Tests;

/// <summary>
/// The SDK against contract/rpc.json. Every fake server in this project checks each request it
/// receives against the contract (<see cref="FakeServer.AssertConforms"/>); this class proves the
/// checker catches what it must, drives every method the contract lists through one session,
/// and feeds the SDK results and notifications carrying every field the contract lists.
/// </summary>
public sealed class ContractConformanceTests
{
    [Fact]
    public void The_checker_refuses_missing_unlisted_and_mistyped_fields()
    {
        var contract = ContractChecker.Shared;
        Assert.Empty(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"write_file","params":{"path":"/a","content":"AAE=","mode":420}}""")));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"write_file","params":{"content":"AAE="}}""")), e => e.Contains("path: required", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"read_file","params":{"path":"/a","follow":true}}""")), e => e.Contains("not in the contract", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"write_file","params":{"path":"/a","content":"not base64!"}}""")), e => e.Contains("base64", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"exec_tty","params":{"command":"sh","rows":24.5}}""")), e => e.Contains("integer", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"create","params":{"image":"x","id":"vm-1"}}""")), e => e.Contains("forbidden", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","method":"log","params":{}}""")), e => e.Contains("id must be an integer", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"create","params":{"image":"x","network":{"interception":{"rules":[{"phase":"during"}]}}}}""")), e => e.Contains("during", StringComparison.Ordinal));
        Assert.Contains(contract.CheckRequest(Parse("""{"jsonrpc":"2.0","id":1,"method":"teleport","params":{}}""")), e => e.Contains("not in the contract", StringComparison.Ordinal));
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task One_session_sends_every_contract_method_in_its_shape_and_accepts_full_results()
    {
        var contract = ContractChecker.Shared;
        var server = new FakeServer();
        foreach (var method in new[] { "exec", "write_file", "read_file", "list_files", "log", "allow_list_add", "allow_list_delete", "port_forward" })
        {
            server.On(method, c => c.ResultAsync(contract.SampleResult(method)));
        }

        server.On("create", c => c.ResultAsync(contract.SampleResult("create")));
        server.On("exec_stream", async c =>
        {
            await server.NotifyAsync("exec_stream.stdout", contract.SampleNotification("exec_stream.stdout", c.Id));
            await server.NotifyAsync("exec_stream.stderr", contract.SampleNotification("exec_stream.stderr", c.Id));
            await server.NotifyAsync("event", contract.SampleNotification("event", 0));
            await c.ResultAsync(contract.SampleResult("exec_stream"));
        });
        foreach (var (method, prefix) in new[] { ("exec_pipe", "exec_pipe"), ("exec_tty", "exec_tty") })
        {
            server.On(method, async c =>
            {
                await server.NotifyAsync(prefix + ".ready", contract.SampleNotification(prefix + ".ready", c.Id));
                await server.NotifyAsync(prefix + ".stdout", contract.SampleNotification(prefix + ".stdout", c.Id));
                await foreach (var input in server.InputFor(c.Id).Reader.ReadAllAsync(c.Cancelled))
                {
                    if (input.Method.EndsWith("stdin_eof", StringComparison.Ordinal))
                    {
                        break;
                    }
                }

                await c.ResultAsync(contract.SampleResult(method));
            });
        }

        server.On("log_stream", async c =>
        {
            await server.NotifyAsync("log_stream.data", contract.SampleNotification("log_stream.data", c.Id));
            await Task.Delay(Timeout.Infinite, c.Cancelled);
        });

        var options = Fake.Busybox with
        {
            Cpus = 2, MemoryMb = 1024, DiskSizeMb = 2048, TimeoutSeconds = 300, Privileged = true, Env = new Dictionary<string, string> { ["A"] = "b" },
            AllowHosts = ["a.test"], AddHosts = [new HostMapping("h.test", "10.0.0.1")], BlockPrivateIps = false, Intercept = true,
            Secrets = [new SandboxSecret("K", "v", ["a.test"]) { Placeholder = "P" }], DnsServers = ["1.1.1.1"], Hostname = "box", Mtu = 1400, AllowTcp = ["db.test:5432"],
            NetworkRules =
            [
                new NetworkHookRule
                {
                    Name = "all", Phase = NetworkHookPhase.After, Action = NetworkHookAction.Mutate, Hosts = ["a.test"], Methods = ["GET"], Path = "/x",
                    SetHeaders = new Dictionary<string, string> { ["H"] = "1" }, DeleteHeaders = ["D"], SetQuery = new Dictionary<string, string> { ["q"] = "1" }, DeleteQuery = ["z"],
                    RewritePath = "/y", SetResponseHeaders = new Dictionary<string, string> { ["R"] = "1" }, DeleteResponseHeaders = ["S"],
                    BodyReplacements = [new BodyReplacement("a", "b")], Timeout = TimeSpan.FromMilliseconds(1500),
                },
                new NetworkHookRule { Hook = (_, _) => ValueTask.FromResult<NetworkHookResult?>(null), Timeout = TimeSpan.FromSeconds(1) },
            ],
            Workspace = "/workspace", Mounts = new Dictionary<string, VfsMount> { ["/workspace"] = VfsMount.Overlay("/tmp") },
            VfsInterception = new VfsInterception { EmitEvents = true, Rules = [new VfsHookRule { Action = VfsHookAction.Allow, Name = "n", Phase = VfsHookPhase.After, Ops = ["write"], Path = "/w/*", Timeout = TimeSpan.FromMilliseconds(100) }] },
            ExtraDisks = [new ExtraDisk("/d.ext4", "/d", true)],
            ImageConfig = new ImageConfig { User = "u", WorkingDir = "/w", Entrypoint = ["e"], Cmd = ["c"], Env = new Dictionary<string, string> { ["E"] = "1" } },
        };
        var sandbox = await MatchlockClient.LaunchAsync(options, server.ClientOptions(), Fake.Token);
        var ct = Fake.Token;
        var execOptions = new ExecOptions { WorkingDir = "/w", User = "u", Env = new Dictionary<string, string> { ["X"] = "1" } };

        var exec = await sandbox.ExecAsync("true", execOptions, ct);
        Assert.Equal("sample", exec.StdoutText);
        await foreach (var unused in sandbox.ExecStreamAsync("true", execOptions, ct))
        {
        }

        await using (var pipe = await sandbox.ExecPipeAsync("cat", execOptions, ct))
        {
            await pipe.StandardInput.WriteAsync(new byte[] { 1, 2, 3 }, ct);
            await pipe.CloseStandardInputAsync();
            Assert.Equal(7, (await pipe.WaitAsync(ct)).ExitCode);
        }

        await using (var tty = await sandbox.ExecTtyAsync("sh", 30, 100, execOptions, ct))
        {
            await tty.ResizeAsync(31, 101, ct);
            await tty.Input.WriteAsync(new byte[] { 4 }, ct);
            await tty.CloseInputAsync();
            await tty.WaitAsync(ct);
        }

        await sandbox.WriteFileAsync("/f", new byte[] { 0, 255 }, cancellationToken: ct);
        Assert.Equal("sample"u8.ToArray(), await sandbox.ReadFileAsync("/f", ct));
        var files = await sandbox.ListFilesAsync("/", ct);
        Assert.Equal(new DateTimeOffset(2024, 5, 1, 10, 20, 30, TimeSpan.Zero), files[0].ModifiedAt!.Value.AddTicks(-(files[0].ModifiedAt!.Value.Ticks % TimeSpan.TicksPerSecond)));
        Assert.Equal("sample", await sandbox.GetLogTextAsync(ct));
        await foreach (var unused in sandbox.StreamLogAsync(ct))
        {
            break; // stopping it sends cancel
        }

        Assert.Equal(["sample"], (await sandbox.AllowListAddAsync(["b.test"], ct)).Changed);
        Assert.Equal(["sample"], (await sandbox.AllowListDeleteAsync(["b.test"], ct)).AllowedHosts);
        Assert.Equal(7, (await sandbox.PortForwardAsync([new PortForward(8080, 80)], ["127.0.0.1"], ct))[0].LocalPort);
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            server.On("exec", c => Task.Delay(Timeout.Infinite, c.Cancelled));
            var running = sandbox.ExecAsync("sleep 9", cancellationToken: cts.Token);
            await server.WaitForAsync("exec", 2);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        }

        await sandbox.DisposeAsync();

        await Matchlock.Tests.Eventually.Until(() => server.Calls("cancel").Count() >= 2, TimeSpan.FromSeconds(10), "both cancels");
        var sent = server.Requests.Select(r => r.Method).ToHashSet();
        var unsent = contract.MethodNames.Where(m => !sent.Contains(m)).ToList();
        Assert.True(unsent.Count == 0, "methods the session never sent: " + string.Join(", ", unsent));
        server.AssertConforms();
    }

    [Fact]
    public void Every_sample_result_and_notification_conforms_to_the_contract_itself()
    {
        // Guards the generator the session above relies on: a sample that broke the contract would prove nothing.
        var contract = ContractChecker.Shared;
        foreach (var method in contract.Root.GetProperty("methods").EnumerateObject().Where(m => m.Value.TryGetProperty("result", out _)))
        {
            Assert.Empty(contract.CheckResult(method.Name, Parse(contract.SampleResult(method.Name))));
        }

        foreach (var notification in contract.Root.GetProperty("notifications").EnumerateObject())
        {
            Assert.Empty(contract.CheckNotification(notification.Name, Parse(contract.SampleNotification(notification.Name, 3))));
        }
    }

    private static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
