using System.Text;

namespace Matchlock.Sdk.Tests;

/// <summary>Files, allow list, port forward, log, log stream and events.</summary>
public sealed class FileAndNetworkTests
{
    private static readonly byte[] AllBytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();

    [Fact(Timeout = Fake.Timeout)]
    public async Task Write_file_always_sends_a_mode_defaulting_to_0644()
    {
        var server = new FakeServer().On("write_file", c => c.ResultAsync("{}"));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            await sandbox.WriteFileAsync("/tmp/blob", AllBytes, cancellationToken: Fake.Token);
            await sandbox.WriteFileAsync("/tmp/run.sh", "#!/bin/sh\n", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, Fake.Token);

            var writes = server.Calls("write_file").ToList();
            Assert.Equal(420, writes[0].Params.GetProperty("mode").GetInt32());
            Assert.Equal(AllBytes, Convert.FromBase64String(writes[0].Params.GetProperty("content").GetString()!));
            Assert.Equal(448, writes[1].Params.GetProperty("mode").GetInt32()); // 0700
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Read_file_returns_the_bytes_and_failures_are_file_exceptions()
    {
        var server = new FakeServer().On("read_file", c => c.Params.GetProperty("path").GetString() == "/missing"
            ? c.ErrorAsync(-32002, "read /missing: no such file")
            : c.ResultAsync($$"""{"content":"{{Convert.ToBase64String(AllBytes)}}"}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            Assert.Equal(AllBytes, await sandbox.ReadFileAsync("/tmp/blob", Fake.Token));
            var error = await Assert.ThrowsAsync<MatchlockFileException>(() => sandbox.ReadFileAsync("/missing", Fake.Token));
            Assert.Equal(-32002, error.Code);
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task List_files_reads_every_entry()
    {
        var server = new FakeServer().On("list_files", c => c.ResultAsync(
            """{"files":[{"name":"a.txt","size":5,"mode":420,"mod_time":"2024-05-01T10:20:30.123456789Z","is_dir":false},{"name":"sub","size":4096,"mode":2147484141,"is_dir":true}]}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var files = await sandbox.ListFilesAsync("/tmp", Fake.Token);
            Assert.Equal(2, files.Count);
            Assert.Equal(new FileEntry("a.txt", 5, 420, false) { ModifiedAt = files[0].ModifiedAt }, files[0]);
            Assert.Equal(new DateTimeOffset(2024, 5, 1, 10, 20, 30, TimeSpan.Zero), files[0].ModifiedAt!.Value.AddTicks(-(files[0].ModifiedAt!.Value.Ticks % TimeSpan.TicksPerSecond)));
            Assert.True(files[1].IsDirectory);
            Assert.Null(files[1].ModifiedAt);
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_malformed_request_is_an_invalid_request_exception()
    {
        var server = new FakeServer().On("list_files", c => c.ErrorAsync(-32602, "path: must be absolute"));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var error = await Assert.ThrowsAsync<MatchlockInvalidRequestException>(() => sandbox.ListFilesAsync("relative", Fake.Token));
            Assert.Contains("must be absolute", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Allow_list_changes_return_what_changed_and_the_list()
    {
        var server = new FakeServer()
            .On("allow_list_add", c => c.ResultAsync("""{"added":["pypi.org"],"allowed_hosts":["api.test","pypi.org"]}"""))
            .On("allow_list_delete", c => c.ResultAsync("""{"removed":["api.test"],"allowed_hosts":["pypi.org"]}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server, Fake.Busybox with { Intercept = true });
        await using (sandbox)
        {
            var added = await sandbox.AllowListAddAsync(["pypi.org"], Fake.Token);
            Assert.Equal(["pypi.org"], added.Changed);
            Assert.Equal(["api.test", "pypi.org"], added.AllowedHosts);
            var removed = await sandbox.AllowListDeleteAsync(["api.test"], Fake.Token);
            Assert.Equal(["api.test"], removed.Changed);
            Assert.Equal(["pypi.org"], server.Single("allow_list_add").Params.GetProperty("hosts").EnumerateArray().Select(h => h.GetString()));
            Assert.True(server.Single("create").Params.GetProperty("network").GetProperty("intercept").GetBoolean());
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Port_forward_parses_specs_and_returns_the_bindings()
    {
        var server = new FakeServer().On("port_forward", c => c.ResultAsync(
            """{"bindings":[{"address":"127.0.0.1","local_port":8080,"remote_port":80},{"address":"127.0.0.1","local_port":9000,"remote_port":9000}]}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var bindings = await sandbox.PortForwardAsync(["8080:80", "9000"], Fake.Token);
            Assert.Equal(new PortBinding("127.0.0.1", 9000, 9000), bindings[1]);
            var forwards = server.Single("port_forward").Params.GetProperty("forwards");
            Assert.Equal(9000, forwards[1].GetProperty("local_port").GetInt32());
            Assert.False(server.Single("port_forward").Params.TryGetProperty("addresses", out _));
            Assert.Throws<FormatException>(() => PortForward.Parse("0:80"));
            Assert.Throws<FormatException>(() => PortForward.Parse("a:b:c"));
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Log_decodes_base64_content()
    {
        var server = new FakeServer().On("log", c => c.ResultAsync($$"""{"content":"{{Convert.ToBase64String("booted\n"u8.ToArray())}}"}"""));
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            Assert.Equal("booted\n", await sandbox.GetLogTextAsync(Fake.Token));
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Log_stream_yields_chunks_and_stopping_it_sends_cancel()
    {
        var server = new FakeServer().On("log_stream", async c =>
        {
            await c.DataAsync("log_stream.data", "line 1\n"u8.ToArray());
            await c.DataAsync("log_stream.data", "line 2\n"u8.ToArray());
            await Task.Delay(Timeout.Infinite, c.Cancelled);
        });
        var (_, sandbox) = await Fake.LaunchAsync(server);
        await using (sandbox)
        {
            var text = new StringBuilder();
            await foreach (var chunk in sandbox.StreamLogAsync(Fake.Token))
            {
                text.Append(Encoding.UTF8.GetString(chunk.Span));
                if (text.ToString().Contains("line 2", StringComparison.Ordinal))
                {
                    break;
                }
            }

            Assert.Equal("line 1\nline 2\n", text.ToString());
            var cancel = await server.WaitForAsync("cancel");
            Assert.Equal(server.Single("log_stream").Id, cancel.Params.GetProperty("id").GetInt64());
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Network_events_reach_every_watcher_until_close()
    {
        var (server, sandbox) = await Fake.LaunchAsync();
        var seen = new System.Collections.Concurrent.ConcurrentQueue<NetworkEvent>();
        var watching = Task.Run(async () =>
        {
            await foreach (var item in sandbox.WatchNetworkEventsAsync(Fake.Token))
            {
                seen.Enqueue(item);
            }
        }, Fake.Token);
        var all = new System.Collections.Concurrent.ConcurrentQueue<SandboxEvent>();
        var watchingAll = Task.Run(async () =>
        {
            await foreach (var item in sandbox.WatchEventsAsync(Fake.Token))
            {
                all.Enqueue(item);
            }
        }, Fake.Token);

        // Watchers register when their enumeration starts; give them a moment.
        await Task.Delay(200, Fake.Token);
        await server.NotifyAsync("event", """{"type":"network","timestamp":1714558830000,"network":{"method":"GET","url":"http://api.test/v1","host":"api.test","status_code":403,"request_bytes":10,"response_bytes":20,"duration_ms":5,"blocked":true,"block_reason":"not on the allow-list"}}""");
        await server.NotifyAsync("event", """{"type":"file","timestamp":1714558830001,"file":{"op":"write","path":"/workspace/a","size":3,"mode":420,"uid":0,"gid":0}}""");
        await Matchlock.Tests.Eventually.Until(() => all.Count == 2, TimeSpan.FromSeconds(10), "both events");
        await sandbox.DisposeAsync();
        await Task.WhenAll(watching, watchingAll).WaitAsync(Fake.Token); // close ends the enumerations

        var network = Assert.Single(seen);
        Assert.True(network.Blocked);
        Assert.Equal("not on the allow-list", network.BlockReason);
        Assert.Equal(403, network.StatusCode);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1714558830000), network.Timestamp);
        var file = all.ElementAt(1).File!;
        Assert.Equal("write", file.Op);
        Assert.Equal(420u, file.Mode);
    }
}
