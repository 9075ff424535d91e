using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Matchlock.Sdk.Tests;

/// <summary>Network hook callbacks, answered over the SDK's real UNIX socket as the host would call it.</summary>
public sealed class HookCallbackTests
{
    private const string BeforeRequest = """{"callback_id":"network_hook_2","phase":"before","host":"api.test","method":"GET","path":"/v1/chat","query":{"a":"1"},"request_headers":{"Authorization":["Bearer x"],"Accept":["*/*"]}}""";

    [Fact(Timeout = Fake.Timeout)]
    public async Task Callback_rules_are_numbered_over_the_whole_list_and_answered_on_the_socket()
    {
        NetworkHookRequest? asked = null;
        var options = Fake.Busybox with
        {
            AllowHosts = ["api.test"],
            NetworkRules =
            [
                new NetworkHookRule { Name = "static", Phase = NetworkHookPhase.Before, Hosts = ["api.test"], SetHeaders = new Dictionary<string, string> { ["X-Static"] = "1" } },
                new NetworkHookRule
                {
                    Name = "dynamic",
                    Phase = NetworkHookPhase.Before,
                    Timeout = TimeSpan.FromSeconds(2),
                    Hook = (request, _) =>
                    {
                        asked = request;
                        return ValueTask.FromResult<NetworkHookResult?>(new NetworkHookResult
                        {
                            Request = new NetworkRequestMutation
                            {
                                Headers = new Dictionary<string, IReadOnlyList<string>> { ["X-Hooked"] = ["yes"] },
                                Path = "/v2/chat",
                            },
                        });
                    },
                },
            ],
        };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            var network = server.Single("create").Params.GetProperty("network");
            var rules = network.GetProperty("interception").GetProperty("rules");
            Assert.False(rules[0].TryGetProperty("callback_id", out _));
            Assert.Equal("network_hook_2", rules[1].GetProperty("callback_id").GetString());
            Assert.Equal(2000, rules[1].GetProperty("timeout_ms").GetInt32());
            Assert.True(network.GetProperty("intercept").GetBoolean());
            var socket = network.GetProperty("interception").GetProperty("callback_socket").GetString()!;

            using var reply = await CallAsync(socket, BeforeRequest);
            var root = reply.RootElement;
            Assert.Equal(["yes"], root.GetProperty("request").GetProperty("headers").GetProperty("X-Hooked").EnumerateArray().Select(v => v.GetString()));
            Assert.Equal("/v2/chat", root.GetProperty("request").GetProperty("path").GetString());
            Assert.False(root.TryGetProperty("error", out _));
            Assert.Empty(ContractChecker.Shared.Check(root, "#HookCallbackReply", "reply"));

            Assert.Equal("api.test", asked!.Host);
            Assert.Equal("1", asked.Query["a"]);
            Assert.Equal(["Bearer x"], asked.RequestHeaders["authorization"]);
        }

        server.AssertConforms();
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task After_hooks_see_the_response_and_can_replace_the_body()
    {
        var options = Fake.Busybox with
        {
            NetworkRules =
            [
                new NetworkHookRule
                {
                    Phase = NetworkHookPhase.After,
                    Hook = (request, _) => ValueTask.FromResult<NetworkHookResult?>(request.IsServerSentEvents && request.StatusCode == 200
                        ? new NetworkHookResult
                        {
                            Response = new NetworkResponseMutation
                            {
                                BodyReplacements = [new BodyReplacement("world", "sandbox")],
                                SetBody = new byte[] { 0, 1, 2, 255 },
                                Headers = new Dictionary<string, IReadOnlyList<string>> { ["Content-Type"] = ["text/plain"] },
                            },
                        }
                        : null),
                },
            ],
        };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            var socket = server.Single("create").Params.GetProperty("network").GetProperty("interception").GetProperty("callback_socket").GetString()!;
            using var reply = await CallAsync(socket, """{"callback_id":"network_hook_1","phase":"after","host":"api.test","method":"GET","path":"/sse","query":{},"request_headers":{},"status_code":200,"response_headers":{"Content-Type":["text/event-stream"]},"is_sse":true}""");
            var response = reply.RootElement.GetProperty("response");
            Assert.Equal(new byte[] { 0, 1, 2, 255 }, response.GetProperty("set_body_base64").GetBytesFromBase64());
            Assert.Equal("sandbox", response.GetProperty("body_replacements")[0].GetProperty("replace").GetString());
            Assert.Empty(ContractChecker.Shared.Check(reply.RootElement, "#HookCallbackReply", "reply"));

            using var noChange = await CallAsync(socket, """{"callback_id":"network_hook_1","phase":"after","host":"api.test","method":"GET","path":"/","status_code":404,"is_sse":false}""");
            Assert.Empty(noChange.RootElement.EnumerateObject()); // null result: {} = no change
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_hook_that_throws_or_an_unknown_id_answers_an_error_so_the_host_blocks()
    {
        var options = Fake.Busybox with
        {
            NetworkRules =
            [
                new NetworkHookRule { Name = "broken", Hook = (_, _) => throw new InvalidOperationException("policy store unreachable") },
                new NetworkHookRule { Name = "slow", Timeout = TimeSpan.FromMilliseconds(100), Hook = async (_, ct) => { await Task.Delay(Timeout.Infinite, ct); return null; } },
            ],
        };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        await using (sandbox)
        {
            var socket = server.Single("create").Params.GetProperty("network").GetProperty("interception").GetProperty("callback_socket").GetString()!;

            using var thrown = await CallAsync(socket, BeforeRequest.Replace("network_hook_2", "network_hook_1", StringComparison.Ordinal));
            Assert.Contains("policy store unreachable", thrown.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);

            using var late = await CallAsync(socket, BeforeRequest);
            Assert.True(late.RootElement.TryGetProperty("error", out _));

            using var unknown = await CallAsync(socket, BeforeRequest.Replace("network_hook_2", "network_hook_9", StringComparison.Ordinal));
            Assert.Contains("network_hook_9", unknown.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);

            using var garbage = await CallAsync(socket, "{not json");
            Assert.True(garbage.RootElement.TryGetProperty("error", out _));
        }
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Closing_the_sandbox_removes_the_callback_socket()
    {
        var options = Fake.Busybox with { NetworkRules = [new NetworkHookRule { Hook = (_, _) => ValueTask.FromResult<NetworkHookResult?>(null) }] };
        var (server, sandbox) = await Fake.LaunchAsync(options: options);
        var socket = server.Single("create").Params.GetProperty("network").GetProperty("interception").GetProperty("callback_socket").GetString()!;
        Assert.True(File.Exists(socket));
        await sandbox.DisposeAsync();
        Assert.False(Directory.Exists(Path.GetDirectoryName(socket)));
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_failed_create_also_removes_the_callback_socket()
    {
        string? socket = null;
        var server = new FakeServer().On("create", c =>
        {
            socket = c.Params.GetProperty("network").GetProperty("interception").GetProperty("callback_socket").GetString();
            return c.ErrorAsync(-32000, "boot failed");
        });
        var options = Fake.Busybox with { NetworkRules = [new NetworkHookRule { Hook = (_, _) => ValueTask.FromResult<NetworkHookResult?>(null) }] };
        await Assert.ThrowsAsync<MatchlockSandboxException>(() => MatchlockClient.LaunchAsync(options, server.ClientOptions(), Fake.Token));
        Assert.NotNull(socket);
        Assert.False(Directory.Exists(Path.GetDirectoryName(socket)));
    }

    /// <summary>What the host does: connect, write one request line, read one reply line.</summary>
    private static async Task<JsonDocument> CallAsync(string socketPath, string request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), Fake.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request + "\n"), Fake.Token);
        using var reader = new StreamReader(stream);
        var line = await reader.ReadLineAsync(Fake.Token);
        Assert.NotNull(line);
        return JsonDocument.Parse(line);
    }
}
