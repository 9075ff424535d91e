using System.Diagnostics;
using System.Text.Json;

namespace Matchlock.Sdk.Tests;

/// <summary>create, close, and what happens when the server goes away.</summary>
public sealed class LifecycleTests
{
    [Fact(Timeout = Fake.Timeout)]
    public async Task Launch_sends_create_with_launch_entrypoint_and_returns_the_id()
    {
        var (server, sandbox) = await Fake.LaunchAsync();
        await using (sandbox)
        {
            Assert.Equal("vm-0000beef", sandbox.Id);
            var create = server.Single("create");
            Assert.Equal("busybox", create.Params.GetProperty("image").GetString());
            Assert.True(create.Params.GetProperty("launch_entrypoint").GetBoolean());
            Assert.False(create.Params.TryGetProperty("network", out _)); // no network option: the server's defaults
            Assert.False(create.Params.TryGetProperty("resources", out _));
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Create_does_not_start_the_entrypoint()
    {
        var server = new FakeServer();
        await using (await MatchlockClient.CreateAsync(Fake.Busybox, server.ClientOptions(), Fake.Token))
        {
            Assert.False(server.Single("create").Params.TryGetProperty("launch_entrypoint", out _));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Create_sends_the_options_shaped_as_the_original_clients()
    {
        var options = new SandboxOptions
        {
            Image = "alpine:3.20",
            Privileged = true,
            Cpus = 1.5,
            MemoryMb = 256,
            Env = new Dictionary<string, string> { ["A"] = "1" },
            AllowHosts = ["api.example.com", "*.pypi.org"],
            AddHosts = [new HostMapping("upstream.test", "127.0.0.1")],
            Secrets = [new SandboxSecret("API_KEY", "sk-real", ["api.example.com"]) { Placeholder = "PLACEHOLDER" }],
            DnsServers = ["1.1.1.1"],
            Hostname = "box",
            Mtu = 1400,
            AllowTcp = ["db.test:5432"],
            ExtraDisks = [new ExtraDisk("/tmp/disk.ext4", "/data", ReadOnly: true)],
            ImageConfig = new ImageConfig { User = "1000", WorkingDir = "/work", Entrypoint = ["/bin/sh"], Cmd = ["-c", "true"], Env = new Dictionary<string, string> { ["PATH"] = "/bin" } },
        };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            var p = server.Single("create").Params;
            Assert.Equal(1.5, p.GetProperty("resources").GetProperty("cpus").GetDouble());
            Assert.Equal(256, p.GetProperty("resources").GetProperty("memory_mb").GetInt32());
            Assert.False(p.GetProperty("resources").TryGetProperty("disk_size_mb", out _));
            var network = p.GetProperty("network");
            Assert.Equal(["api.example.com", "*.pypi.org"], network.GetProperty("allowed_hosts").EnumerateArray().Select(h => h.GetString()));
            Assert.True(network.GetProperty("block_private_ips").GetBoolean()); // the safe default is always sent
            Assert.False(network.TryGetProperty("intercept", out _)); // an allow-list turns it on by itself
            var secret = network.GetProperty("secrets").GetProperty("API_KEY");
            Assert.Equal("sk-real", secret.GetProperty("value").GetString());
            Assert.Equal("PLACEHOLDER", secret.GetProperty("placeholder").GetString());
            Assert.Equal("upstream.test", network.GetProperty("add_hosts")[0].GetProperty("host").GetString());
            Assert.Equal(1400, network.GetProperty("mtu").GetInt32());
            Assert.Equal("/data", p.GetProperty("extra_disks")[0].GetProperty("guest_mount").GetString());
            Assert.Equal("/bin", p.GetProperty("image_config").GetProperty("env").GetProperty("PATH").GetString());
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Create_without_a_nic_sends_only_no_network_and_naming()
    {
        var (server, sandbox) = await Fake.LaunchAsync(options: Fake.Busybox with { NoNetwork = true, Hostname = "h", DnsServers = ["9.9.9.9"] });
        await using (sandbox)
        {
            var network = server.Single("create").Params.GetProperty("network");
            Assert.Equal(["dns_servers", "hostname", "no_network"], network.EnumerateObject().Select(m => m.Name).Order());
        }

        server.AssertConforms();
    }

    [Fact]
    public async Task Options_that_conflict_are_refused_before_anything_starts()
    {
        var server = new FakeServer();
        await Assert.ThrowsAsync<ArgumentException>(() =>
            MatchlockClient.LaunchAsync(Fake.Busybox with { NoNetwork = true, AllowHosts = ["x.test"] }, server.ClientOptions(), Fake.Token));
        await Assert.ThrowsAsync<ArgumentException>(() =>
            MatchlockClient.LaunchAsync(Fake.Busybox with { Image = " " }, server.ClientOptions(), Fake.Token));
        await Assert.ThrowsAsync<ArgumentException>(() => MatchlockClient.LaunchAsync(
            Fake.Busybox with { NetworkRules = [new NetworkHookRule { Action = NetworkHookAction.Block, Hook = (_, _) => ValueTask.FromResult<NetworkHookResult?>(null) }] },
            server.ClientOptions(),
            Fake.Token));
        Assert.Empty(server.Requests);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Vfs_options_are_sent_as_the_vfs_object()
    {
        var options = Fake.Busybox with
        {
            Workspace = "/workspace",
            Mounts = new Dictionary<string, VfsMount> { ["/workspace/src"] = VfsMount.HostDirectory("/tmp/src", readOnly: true), ["/workspace/tmp"] = VfsMount.Memory() },
            VfsInterception = new VfsInterception { EmitEvents = true, Rules = [new VfsHookRule { Action = VfsHookAction.Block, Phase = VfsHookPhase.Before, Ops = ["write"], Path = "/workspace/src/*" }] },
        };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            var vfs = server.Single("create").Params.GetProperty("vfs");
            Assert.Equal("/workspace", vfs.GetProperty("workspace").GetString());
            Assert.Equal("host_fs", vfs.GetProperty("mounts").GetProperty("/workspace/src").GetProperty("type").GetString());
            Assert.True(vfs.GetProperty("mounts").GetProperty("/workspace/src").GetProperty("readonly").GetBoolean());
            Assert.Equal("block", vfs.GetProperty("interception").GetProperty("rules")[0].GetProperty("action").GetString());
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_refused_create_throws_the_servers_error_and_ends_the_server()
    {
        var server = new FakeServer().On("create", c => c.ErrorAsync(-32000, "image busybox: not found"));
        var error = await Assert.ThrowsAsync<MatchlockSandboxException>(() => MatchlockClient.LaunchAsync(Fake.Busybox, server.ClientOptions(), Fake.Token));
        Assert.Contains("image busybox: not found", error.Message, StringComparison.Ordinal);
        Assert.Equal(MatchlockRpcException.VmFailed, error.Code);
        await server.Stopped.WaitAsync(Fake.Token);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_refused_field_is_an_invalid_request()
    {
        var server = new FakeServer().On("create", c => c.ErrorAsync(-32602, "vfs: not supported yet"));
        var error = await Assert.ThrowsAsync<MatchlockInvalidRequestException>(() => MatchlockClient.LaunchAsync(Fake.Busybox, server.ClientOptions(), Fake.Token));
        Assert.Equal(-32602, error.Code);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Dispose_sends_close_with_the_timeout_and_the_server_ends()
    {
        var (server, sandbox) = await Fake.LaunchAsync(closeTimeout: TimeSpan.FromSeconds(3));
        await sandbox.DisposeAsync();
        Assert.Equal(3, server.Single("close").Params.GetProperty("timeout_seconds").GetDouble());
        await server.Stopped.WaitAsync(Fake.Token);
        Assert.False(server.Killed);
        await sandbox.CloseAsync(cancellationToken: Fake.Token); // again: nothing more is sent
        Assert.Single(server.Calls("close"));
        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Close_kills_a_server_that_neither_answers_nor_stops()
    {
        var server = new FakeServer { IgnoreInputEnd = true }.On("close", _ => Task.Delay(Timeout.Infinite, Fake.Token));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        var clock = Stopwatch.StartNew();
        await sandbox.CloseAsync(TimeSpan.FromMilliseconds(200), Fake.Token);
        await server.Stopped.WaitAsync(Fake.Token);
        Assert.True(server.Killed);

        // 0.2 s for the answer + 1 s grace, then 0.2 s for the exit: well under the 3 s the original clients allow.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.2), TimeSpan.FromSeconds(10));
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Requests_in_flight_fail_with_the_sandbox_error_when_the_server_ends()
    {
        var server = new FakeServer().On("exec", c => Task.Delay(Timeout.Infinite, c.Cancelled));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var pending = sandbox.ExecAsync("sleep 100", cancellationToken: Fake.Token);
            await server.WaitForAsync("exec");
            await server.WriteLineAsync("not json: a foreign line is skipped");
            await server.WriteLineAsync("""{"jsonrpc":"2.0","id":999999,"result":{}}"""); // nobody asked: ignored
            await server.CrashAsync("out of memory in the fake");

            var error = await Assert.ThrowsAsync<MatchlockSandboxException>(() => pending);
            Assert.Contains("out of memory in the fake", error.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<MatchlockSandboxException>(() => sandbox.ExecAsync("true", cancellationToken: Fake.Token));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Port_forwards_in_the_options_are_bound_right_after_create()
    {
        var server = new FakeServer().On("port_forward", c => c.ResultAsync("""{"bindings":[{"address":"127.0.0.1","local_port":18080,"remote_port":80}]}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server, Fake.Busybox with { PortForwards = [PortForward.Parse("18080:80")], PortForwardAddresses = ["127.0.0.1"] });
        await using (sandbox)
        {
            var forward = server.Single("port_forward").Params;
            Assert.Equal(18080, forward.GetProperty("forwards")[0].GetProperty("local_port").GetInt32());
            Assert.Equal("127.0.0.1", forward.GetProperty("addresses")[0].GetString());
        }

        server.AssertConforms();
    }
}
