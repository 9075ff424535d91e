using System.Text;
using System.Text.Json;
using Matchlock.Tests;

namespace Matchlock.Rpc.Tests;

/// <summary>The JSON-RPC layer of <c>matchlock rpc</c> against a fake sandbox: framing, errors, ordering, streams, cancel, close.</summary>
public sealed class RpcServerTests
{
    private static CancellationToken Ct => RpcHarness.Ct;

    [Fact]
    public async Task Malformed_lines_get_errors_with_the_codes_of_json_rpc_and_the_server_goes_on()
    {
        await using var rpc = new RpcHarness();
        await rpc.SendAsync("{not json");
        var parse = await rpc.NextAsync();
        Assert.Equal(JsonValueKind.Null, parse.GetProperty("id").ValueKind);
        Assert.Equal(-32700, parse.GetProperty("error").GetProperty("code").GetInt32());

        await rpc.SendAsync("[1,2]");
        Assert.Equal(-32600, (await rpc.NextAsync()).GetProperty("error").GetProperty("code").GetInt32());

        await rpc.SendAsync("""{"jsonrpc":"2.0","id":5}""");
        var noMethod = await rpc.NextAsync();
        Assert.Equal(5, noMethod.GetProperty("id").GetInt32());
        Assert.Equal(-32600, noMethod.GetProperty("error").GetProperty("code").GetInt32());

        Assert.Equal(-32601, (await rpc.ErrorAsync(6, "no_such_method")).Code);
        await rpc.SendAsync("""{"jsonrpc":"2.0","id":7,"method":"exec","params":[1]}""");
        Assert.Equal(-32602, (await rpc.AnswerAsync(7)).Answer.GetProperty("error").GetProperty("code").GetInt32());

        // Blank lines are ignored; a request without params is fine.
        await rpc.SendAsync("");
        Assert.Equal(-32000, (await rpc.ErrorAsync(8, "log")).Code);
    }

    [Fact]
    public async Task A_line_over_ten_mebibytes_is_refused_and_the_next_line_is_served()
    {
        await using var rpc = new RpcHarness();
        var huge = """{"jsonrpc":"2.0","id":1,"method":"exec","params":{"command":"echo """ + new string('x', LineReader.MaxLine + 10) + "\"}}";
        var send = rpc.SendAsync(huge);
        var error = await rpc.NextAsync();
        Assert.Equal(-32700, error.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("longer than", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        await send;
        await rpc.CreateAsync();
        Assert.Equal("hi\n", Text((await rpc.ResultAsync(2, "exec", new { command = "echo hi" })).GetProperty("stdout")));
    }

    [Fact]
    public async Task Requests_before_create_fail_saying_so_and_a_second_create_is_refused()
    {
        await using var rpc = new RpcHarness();
        var (code, message) = await rpc.ErrorAsync(1, "exec", new { command = "echo hi" });
        Assert.Equal(-32000, code);
        Assert.Contains("create", message, StringComparison.Ordinal);

        Assert.Equal("vm-0123abcd", (await rpc.ResultAsync(2, "create", new { image = "busybox" })).GetProperty("id").GetString());
        var second = await rpc.ErrorAsync(3, "create", new { image = "busybox" });
        Assert.Equal(-32000, second.Code);
        Assert.Contains("one sandbox", second.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{}""", "params.image")]
    [InlineData("""{"image":"busybox","id":"vm-12345678"}""", "params.id")]
    [InlineData("""{"image":"busybox","resources":{"cpus":"two"}}""", "params.resources.cpus")]
    [InlineData("""{"image":"busybox","resources":{"memory_mb":1.5}}""", "params.resources.memory_mb")]
    [InlineData("""{"image":"busybox","network":{"allowed_hosts":"example.com"}}""", "params.network.allowed_hosts")]
    [InlineData("""{"image":"busybox","network":{"secrets":{"KEY":{"value":"v"}}}}""", "params.network.secrets.KEY.hosts")]
    [InlineData("""{"image":"busybox","network":{"add_hosts":[{"host":"a.test","ip":"nope"}]}}""", "add_hosts")]
    [InlineData("""{"image":"busybox","network":{"interception":{"rules":[{"phase":"during"}]}}}""", "phase")]
    [InlineData("""{"image":"busybox","vfs":{"mounts":{"/w":{"type":"overlay","host_path":"/nonexistent-matchlock"}}}}""", "params.vfs.mounts./w.host_path")]
    [InlineData("""{"image":"busybox","vfs":{"mounts":{"/w":{"type":"host_fs","host_path":"relative"}}}}""", "params.vfs.mounts./w.host_path")]
    [InlineData("""{"image":"busybox","vfs":{"mounts":{"/proc/x":{"type":"memory"}}}}""", "cannot be a mount point")]
    [InlineData("""{"image":"busybox","vfs":{"interception":{"rules":[{"action":"block","ops":["explode"]}]}}}""", "unknown op 'explode'")]
    [InlineData("""{"image":"busybox","vfs":{"interception":{"rules":[{"action":"mutate_write","ops":["write"]}]}}}""", "params.vfs.interception.rules[0].action")]
    [InlineData("""{"image":"busybox","vfs":{"interception":{"rules":[{"phase":"after","action":"block"}]}}}""", "cannot block")]
    [InlineData("""{"image":"busybox","vfs":{"interception":{"rules":[{"action":"block","path":"relative/*"}]}}}""", "absolute guest path glob")]
    [InlineData("""{"image":"busybox","env":{"A":1}}""", "params.env.A")]
    [InlineData("""{"image":"busybox","network":{"secrets":{"KEY":{"value":"v","hosts":["a.test"],"placeholder":"tiny"}}}}""", "placeholder of secret KEY")]
    public async Task A_bad_create_config_is_an_invalid_params_error_naming_the_field_and_creates_nothing(string config, string field)
    {
        await using var rpc = new RpcHarness();
        await rpc.SendAsync("""{"jsonrpc":"2.0","id":1,"method":"create","params":""" + config + "}");
        var error = (await rpc.AnswerAsync(1)).Answer.GetProperty("error");
        Assert.Equal(-32602, error.GetProperty("code").GetInt32());
        Assert.Contains(field, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(rpc.Factory.Created);
    }

    [Fact]
    public async Task The_create_config_maps_onto_the_sandbox_spec()
    {
        await using var rpc = new RpcHarness();
        await rpc.SendAsync("""
            {"jsonrpc":"2.0","id":1,"method":"create","params":{"image":"busybox","resources":{"cpus":1.5,"memory_mb":256,"disk_size_mb":1024,"timeout_seconds":300},
             "network":{"allowed_hosts":["api.example.com"],"block_private_ips":true,"secrets":{"TOKEN":{"value":"s3cr@t","hosts":["api.example.com"],"placeholder":"my-token-placeholder"}},
               "add_hosts":[{"host":"db.test","ip":"10.0.0.5"}],"dns_servers":["192.0.2.53"],"hostname":"box","mtu":1400,
               "interception":{"rules":[{"phase":"before","action":"allow","hosts":["api.example.com"],"set_headers":{"X-A":"1"}},{"phase":"after","callback_id":"network_hook_2"}],"callback_socket":"/tmp/none.sock"}},
             "env":{"A":"1"},"image_config":{"working_dir":"/srv","env":{"PATH":"/bin"}},"launch_entrypoint":true}}
            """.ReplaceLineEndings(" "));
        Assert.True((await rpc.AnswerAsync(1)).Answer.TryGetProperty("result", out _));
        var config = rpc.Factory.LastConfig!;
        Assert.Equal(1.5, config.Spec.Cpus);
        Assert.Equal(256, config.Spec.MemoryMb);
        Assert.Equal(1024, config.Spec.DiskSizeMb);
        Assert.Equal("box", config.Spec.Hostname);
        Assert.False(config.Spec.RemoveOnDispose);
        var network = config.Spec.Network;
        Assert.Equal(["api.example.com"], network.AllowHosts);
        Assert.Equal(["TOKEN=s3cr@t@api.example.com"], network.Secrets);
        Assert.Equal("my-token-placeholder", network.SecretPlaceholders["TOKEN"]);
        Assert.Equal("10.0.0.5", Assert.Single(network.AddHosts).Value.ToString());
        Assert.Equal(1400, network.Mtu);
        Assert.False(network.AllowPrivate);
        Assert.Equal(Core.Network.Policy.HookAction.Mutate, network.Hooks[0].Action); // "allow" with edits means mutate (the Python client's default)
        Assert.Equal("network_hook_2", network.Hooks[1].CallbackId);
        Assert.Equal("/tmp/none.sock", config.CallbackSocket);
        Assert.Equal(["A=1"], config.Env);
        Assert.True(config.LaunchEntrypoint);
        Assert.Equal("/srv", config.ImageConfig.Apply(new Core.Images.ImageConfig()).WorkingDir);
    }

    [Fact]
    public async Task Vfs_mounts_map_onto_the_sandbox_mounts()
    {
        await using var rpc = new RpcHarness();
        var host = Path.GetTempPath().TrimEnd('/');
        await rpc.CreateAsync(new
        {
            image = "busybox",
            vfs = new Dictionary<string, object>
            {
                ["workspace"] = "/code",
                ["mounts"] = new Dictionary<string, object>
                {
                    ["repo"] = new { type = "host_fs", host_path = host },
                    ["/docs"] = new { type = "host_fs", host_path = host, @readonly = true },
                    ["/scratch"] = new { type = "memory" },
                },
            },
        });
        Assert.Equal(
            [
                new Core.Vfs.VfsMountSpec("/code/repo", Core.Vfs.VfsMountType.HostFs, host),
                new Core.Vfs.VfsMountSpec("/docs", Core.Vfs.VfsMountType.ReadOnly, host),
                new Core.Vfs.VfsMountSpec("/scratch", Core.Vfs.VfsMountType.Memory),
            ],
            rpc.Factory.LastConfig!.Spec.Mounts);
    }

    [Fact]
    public async Task Vfs_interception_maps_onto_rules_and_events_as_the_sdks_send_it()
    {
        await using var rpc = new RpcHarness();
        await rpc.SendAsync("""
            {"jsonrpc":"2.0","id":1,"method":"create","params":{"image":"busybox",
             "vfs":{"mounts":{"/workspace":{"type":"memory"}},"interception":{"emit_events":true,"rules":[
               {"action":"block","name":"no-secrets","phase":"before","ops":["CREATE","write"],"path":"/workspace/secret*","timeout_ms":250},
               {"action":"allow"},
               {"phase":"after","ops":["write"]}]}}}}
            """.ReplaceLineEndings(""));
        Assert.True((await rpc.AnswerAsync(1)).Answer.TryGetProperty("result", out _));
        var interception = rpc.Factory.LastConfig!.Spec.VfsInterception!;
        Assert.True(interception.EmitEvents);
        Assert.Equal(3, interception.Rules.Count);
        var block = interception.Rules[0];
        Assert.Equal(("no-secrets", Core.Vfs.Hooks.VfsHookPhase.Before, Core.Vfs.Hooks.VfsHookAction.Block, "/workspace/secret*", 250), (block.Name, block.Phase, block.Action, block.Path, block.TimeoutMs));
        Assert.Equal(["create", "write"], block.Ops); // the clients match ops lower-case
        Assert.Equal(Core.Vfs.Hooks.VfsHookAction.Allow, interception.Rules[1].Action); // TS omits action
        Assert.Equal(Core.Vfs.Hooks.VfsHookPhase.After, interception.Rules[2].Phase);
    }

    [Fact]
    public async Task A_missing_block_private_ips_keeps_private_addresses_blocked_and_false_opens_them()
    {
        await using (var rpc = new RpcHarness())
        {
            await rpc.CreateAsync(new { image = "busybox", network = new { allowed_hosts = Array.Empty<string>() } });
            Assert.False(rpc.Factory.LastConfig!.Spec.Network.AllowPrivate);
            Assert.False(rpc.Factory.LastConfig.Spec.Network.Intercepting); // an empty allow-list alone does not turn interception on
        }

        await using (var rpc = new RpcHarness())
        {
            await rpc.CreateAsync(new { image = "busybox", network = new { block_private_ips = false } });
            Assert.True(rpc.Factory.LastConfig!.Spec.Network.AllowPrivate);
        }
    }

    [Fact]
    public async Task Exec_returns_status_and_binary_safe_output_and_a_string_command_runs_under_sh()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        var result = await rpc.ResultAsync(2, "exec", new { command = "fail 3" });
        Assert.Equal(3, result.GetProperty("exit_code").GetInt32());
        Assert.Equal("failing\n", Text(result.GetProperty("stderr")));
        Assert.True(result.GetProperty("duration_ms").GetInt64() >= 0);

        var bytes = await rpc.ResultAsync(3, "exec", new { command = new[] { "bytes" }, working_dir = "/tmp", user = "nobody", env = new { B = "2" } });
        Assert.Equal(Enumerable.Range(0, 256).Select(i => (byte)i), Convert.FromBase64String(bytes.GetProperty("stdout").GetString()!));
        var spec = rpc.Sandbox.Execs[^1];
        Assert.Equal(["bytes"], spec.Argv);
        Assert.Equal("/tmp", spec.WorkingDir);
        Assert.Equal("nobody", spec.User);
        Assert.Equal(["B=2"], spec.Env);
        Assert.Equal(["/bin/sh", "-c", "fail 3"], rpc.Sandbox.Execs[0].Argv);
    }

    [Fact]
    public async Task Exec_stream_sends_every_output_notification_before_its_result()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec_stream", new { command = "bytes" });
        var (answer, notifications) = await rpc.AnswerAsync(2);
        Assert.Equal(0, answer.GetProperty("result").GetProperty("exit_code").GetInt32());
        var output = notifications.Where(n => n.GetProperty("method").GetString() == "exec_stream.stdout")
            .SelectMany(n =>
            {
                Assert.Equal(2, n.GetProperty("params").GetProperty("id").GetInt32());
                return Convert.FromBase64String(n.GetProperty("params").GetProperty("data").GetString()!);
            });
        Assert.Equal(Enumerable.Range(0, 256).Select(i => (byte)i), output);
    }

    [Fact]
    public async Task Exec_pipe_says_ready_then_takes_stdin_in_order_and_never_answers_the_stdin_methods()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec_pipe", new { command = "cat" });
        var ready = await rpc.NextAsync();
        Assert.Equal("exec_pipe.ready", ready.GetProperty("method").GetString());
        Assert.Equal(2, ready.GetProperty("params").GetProperty("id").GetInt32());

        var sent = new List<byte>();
        for (var i = 0; i < 40; i++)
        {
            var chunk = Enumerable.Range(0, 4096).Select(b => (byte)(b + i)).ToArray();
            sent.AddRange(chunk);
            // The original clients give stdin an id of its own; the Go client none: both work, neither is answered.
            var line = i % 2 == 0
                ? JsonSerializer.Serialize(new { jsonrpc = "2.0", id = 100 + i, method = "exec_pipe.stdin", @params = new { id = 2, data = Convert.ToBase64String(chunk) } })
                : JsonSerializer.Serialize(new { jsonrpc = "2.0", method = "exec_pipe.stdin", @params = new { id = 2, data = Convert.ToBase64String(chunk) } });
            await rpc.SendAsync(line);
        }

        await rpc.SendAsync(200, "exec_pipe.stdin_eof", new { id = 2 });
        var (answer, notifications) = await rpc.AnswerAsync(2);
        Assert.Equal(0, answer.GetProperty("result").GetProperty("exit_code").GetInt32());
        Assert.All(notifications, n => Assert.False(n.TryGetProperty("id", out _), "a stdin method was answered: " + n));
        var echoed = notifications.SelectMany(n => Convert.FromBase64String(n.GetProperty("params").GetProperty("data").GetString()!));
        Assert.Equal(sent, echoed);
    }

    [Fact]
    public async Task Input_for_an_exec_that_is_not_running_is_dropped_without_an_answer()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec_pipe.stdin", new { id = 99, data = "aGk=" });
        await rpc.SendAsync(3, "exec_tty.resize", new { id = 99, rows = 10, cols = 20 });
        await rpc.SendAsync(4, "exec_pipe.stdin", new { id = "not a number" });
        var next = await rpc.ResultAsync(5, "exec", new { command = "echo after" });
        Assert.Equal("after\n", Text(next.GetProperty("stdout")));
        Assert.Equal(2, rpc.Received.Count); // create's answer and exec's: nothing for the input
    }

    [Fact]
    public async Task Exec_tty_passes_rows_cols_and_resizes()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec_tty", new { command = "tty", rows = 40, cols = 100 });
        Assert.Equal("exec_tty.ready", (await rpc.NextAsync()).GetProperty("method").GetString());
        var spec = rpc.Sandbox.Execs.Single();
        Assert.True(spec.Tty);
        Assert.True(spec.Stdin);
        Assert.Equal((40, 100), (spec.Rows, spec.Cols));
        await rpc.SendAsync(3, "exec_tty.resize", new { id = 2, rows = 50, cols = 132 });
        var output = await rpc.NextAsync();
        Assert.Equal("exec_tty.stdout", output.GetProperty("method").GetString());
        Assert.Equal("resize 50x132\n", Text(output.GetProperty("params").GetProperty("data")));
        Assert.True((await rpc.ResultAsync(4, "cancel", new { id = 2 })).GetProperty("cancelled").GetBoolean());
        var cancelled = (await rpc.AnswerAsync(2)).Answer;
        Assert.Equal(-32003, cancelled.GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Cancel_stops_a_running_exec_which_answers_cancelled_and_an_unknown_id_is_not_cancelled()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec", new { command = "sleep" });
        await Eventually.Until(() => rpc.Sandbox.Execs.Count == 1, RpcHarness.Bound, "the exec to start");
        Assert.False((await rpc.ResultAsync(3, "cancel", new { id = 77 })).GetProperty("cancelled").GetBoolean());
        Assert.True((await rpc.ResultAsync(4, "cancel", new { id = 2 })).GetProperty("cancelled").GetBoolean());
        var (answer, _) = await rpc.AnswerAsync(2);
        Assert.Equal(-32003, answer.GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Fifty_concurrent_execs_all_get_their_own_answer_on_whole_lines()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        for (var i = 0; i < 50; i++)
        {
            await rpc.SendAsync(100 + i, i % 2 == 0 ? "exec" : "exec_stream", new { command = $"echo n{i}" });
        }

        var answered = new Dictionary<long, JsonElement>();
        var streamed = new Dictionary<long, string>();
        while (answered.Count < 50)
        {
            var message = await rpc.NextAsync();
            if (message.TryGetProperty("id", out var id))
            {
                answered[id.GetInt64()] = message.GetProperty("result");
            }
            else
            {
                var p = message.GetProperty("params");
                streamed[p.GetProperty("id").GetInt64()] = Text(p.GetProperty("data"));
            }
        }

        for (var i = 0; i < 50; i++)
        {
            Assert.Equal($"n{i}\n", i % 2 == 0 ? Text(answered[100 + i].GetProperty("stdout")) : streamed[100 + i]);
        }
    }

    [Fact]
    public async Task Files_round_trip_and_errors_are_file_errors()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        var content = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        await rpc.ResultAsync(2, "write_file", new { path = "/data/f.bin", content = Convert.ToBase64String(content), mode = 420 });
        Assert.Equal(content, Convert.FromBase64String((await rpc.ResultAsync(3, "read_file", new { path = "/data/f.bin" })).GetProperty("content").GetString()!));
        var files = (await rpc.ResultAsync(4, "list_files", new { path = "/data" })).GetProperty("files");
        var entry = Assert.Single(files.EnumerateArray());
        Assert.Equal("f.bin", entry.GetProperty("name").GetString());
        Assert.Equal(256, entry.GetProperty("size").GetInt64());
        Assert.Equal(0x1A4, entry.GetProperty("mode").GetInt32());
        Assert.False(entry.GetProperty("is_dir").GetBoolean());
        Assert.StartsWith("2023-11-14T", entry.GetProperty("mod_time").GetString(), StringComparison.Ordinal);

        Assert.Equal(-32002, (await rpc.ErrorAsync(5, "read_file", new { path = "/nope" })).Code);
        Assert.Equal(-32602, (await rpc.ErrorAsync(6, "read_file", new { path = "relative" })).Code);
        Assert.Equal(-32602, (await rpc.ErrorAsync(7, "write_file", new { path = "/x", content = "not base64!" })).Code);
    }

    [Fact]
    public async Task The_allow_list_changes_and_reports_the_list()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        var added = await rpc.ResultAsync(2, "allow_list_add", new { hosts = new[] { "a.example", "b.example,c.example" } });
        Assert.Equal(["a.example", "b.example", "c.example"], added.GetProperty("added").EnumerateArray().Select(e => e.GetString()));
        var removed = await rpc.ResultAsync(3, "allow_list_delete", new { hosts = new[] { "b.example" } });
        Assert.Equal(["a.example", "c.example"], removed.GetProperty("allowed_hosts").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(-32602, (await rpc.ErrorAsync(4, "allow_list_add", new { })).Code);
    }

    [Fact]
    public async Task Network_events_become_event_notifications()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        rpc.Sandbox.Events!.Publish(new Core.Network.Proxy.NetworkEvent
        {
            Time = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123),
            Kind = Core.Network.Proxy.NetworkEventKind.Denied,
            Host = "evil.example",
            Method = "GET",
            Path = "/x",
            Status = 403,
            Reason = "not on the allow-list",
        });
        var e = await rpc.NextAsync();
        Assert.Equal("event", e.GetProperty("method").GetString());
        var p = e.GetProperty("params");
        Assert.Equal("network", p.GetProperty("type").GetString());
        Assert.Equal(1_700_000_000_123, p.GetProperty("timestamp").GetInt64());
        Assert.True(p.GetProperty("network").GetProperty("blocked").GetBoolean());
        Assert.Equal("evil.example", p.GetProperty("network").GetProperty("host").GetString());
        Assert.Equal("not on the allow-list", p.GetProperty("network").GetProperty("block_reason").GetString());
    }

    [Fact]
    public async Task Log_returns_base64_content_and_log_stream_follows_until_cancelled()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await File.WriteAllTextAsync(rpc.Sandbox.LogPath, "first\n", Ct);
        Assert.Equal("first\n", Text((await rpc.ResultAsync(2, "log")).GetProperty("content")));
        await rpc.SendAsync(3, "log_stream");
        Assert.Equal("first\n", Text((await rpc.NextAsync()).GetProperty("params").GetProperty("data")));
        await File.AppendAllTextAsync(rpc.Sandbox.LogPath, "second\n", Ct);
        var more = await rpc.NextAsync();
        Assert.Equal("log_stream.data", more.GetProperty("method").GetString());
        Assert.Equal("second\n", Text(more.GetProperty("params").GetProperty("data")));
        await rpc.ResultAsync(4, "cancel", new { id = 3 });
        Assert.Equal(-32003, (await rpc.AnswerAsync(3)).Answer.GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Close_cancels_what_runs_answers_and_stops_reading_and_the_sandbox_is_closed_with_its_timeout()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec", new { command = "sleep" });
        await Eventually.Until(() => rpc.Sandbox.Execs.Count == 1, RpcHarness.Bound, "the exec to start");
        await rpc.SendAsync(3, "close", new { timeout_seconds = 1.5 });
        await rpc.SendAsync(4, "exec", new { command = "echo too late" });
        var answers = new Dictionary<long, JsonElement> { [(await rpc.NextAsync()).GetProperty("id").GetInt64()] = default };
        answers[(await rpc.NextAsync()).GetProperty("id").GetInt64()] = default;
        Assert.Equal([2L, 3L], answers.Keys.Order());
        await rpc.Served.WaitAsync(RpcHarness.Bound, Ct);
        Assert.True(rpc.Sandbox.Closed);
        Assert.Equal(TimeSpan.FromSeconds(1.5), rpc.Sandbox.ClosedWith);
    }

    [Fact]
    public async Task The_end_of_input_stops_the_server_and_closes_the_sandbox_even_mid_exec()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        await rpc.SendAsync(2, "exec", new { command = "sleep" });
        await Eventually.Until(() => rpc.Sandbox.Execs.Count == 1, RpcHarness.Bound, "the exec to start");
        await rpc.EndInputAsync();
        await rpc.Served.WaitAsync(RpcHarness.Bound, Ct);
        Assert.True(rpc.Sandbox.Closed);
    }

    [Fact]
    public async Task A_sandbox_that_stopped_by_itself_fails_later_requests_with_the_reason()
    {
        await using var rpc = new RpcHarness();
        await rpc.CreateAsync();
        rpc.Sandbox.StopByItself("stopped by matchlock kill");
        var (code, message) = await rpc.ErrorAsync(2, "exec", new { command = "echo hi" });
        Assert.Equal(-32000, code);
        Assert.Contains("matchlock kill", message, StringComparison.Ordinal);
    }

    private static string Text(JsonElement base64) => Encoding.UTF8.GetString(Convert.FromBase64String(base64.GetString()!));
}
