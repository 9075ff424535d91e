using System.Text.Json;
using Matchlock.Tests;

namespace Matchlock.Rpc.Tests;

/// <summary>
/// contract/rpc.json against the server: a session through every answered method, and every
/// result and notification the server wrote checked against the contract's shapes (required
/// fields present, no field the contract does not list, types right). The SDKs' own conformance
/// tests check their requests against the same file.
/// </summary>
public sealed class ContractTests
{
    private static readonly JsonElement Contract = LoadContract();

    [Fact]
    public async Task Every_result_and_notification_the_server_sends_has_the_contract_shape()
    {
        var answered = new Dictionary<long, string>();
        await using (var rpc = new RpcHarness())
        {
            async Task Call(long id, string method, object? p = null)
            {
                answered[id] = method;
                await rpc.SendAsync(id, method, p);
                await rpc.AnswerAsync(id);
            }

            await Call(1, "create", new { image = "busybox" });
            await File.WriteAllTextAsync(rpc.Sandbox.LogPath, "log line\n", RpcHarness.Ct);
            await Call(2, "exec", new { command = "fail 2" });
            await Call(3, "exec_stream", new { command = "bytes" });
            await rpc.SendAsync(4, "exec_pipe", new { command = "cat" });
            answered[4] = "exec_pipe";
            await rpc.NextAsync(); // ready
            await rpc.SendAsync(40, "exec_pipe.stdin", new { id = 4, data = "aGk=" });
            await rpc.SendAsync(41, "exec_pipe.stdin_eof", new { id = 4 });
            await rpc.AnswerAsync(4);
            await Call(5, "write_file", new { path = "/d/f", content = "aGk=", mode = 420 });
            await Call(6, "read_file", new { path = "/d/f" });
            await Call(7, "list_files", new { path = "/d" });
            await Call(8, "allow_list_add", new { hosts = new[] { "a.example" } });
            await Call(9, "allow_list_delete", new { hosts = new[] { "a.example" } });
            await Call(10, "port_forward", new { forwards = new[] { new { local_port = 0, remote_port = 80 } } });
            await Call(11, "log");
            await Call(12, "cancel", new { id = 999 });
            rpc.Sandbox.Events!.Publish(new Core.Network.Proxy.NetworkEvent
            {
                Time = DateTimeOffset.UtcNow, Kind = Core.Network.Proxy.NetworkEventKind.Completed, Host = "a.example", Method = "GET", Path = "/", Status = 200, BytesUp = 1, BytesDown = 2, DurationMs = 3,
            });
            await rpc.SendAsync(13, "exec_tty", new { command = "tty", rows = 24, cols = 80 });
            answered[13] = "exec_tty";
            while ((await rpc.NextAsync()).GetProperty("method").GetString() != "exec_tty.ready")
            {
                // the event may come first
            }

            await rpc.SendAsync(42, "exec_tty.resize", new { id = 13, rows = 30, cols = 90 });
            while ((await rpc.NextAsync()).GetProperty("method").GetString() != "exec_tty.stdout")
            {
            }
            await Call(14, "close", new { timeout_seconds = 2 });
            await rpc.Served.WaitAsync(RpcHarness.Bound, RpcHarness.Ct);

            var problems = new List<string>();
            foreach (var message in rpc.Received)
            {
                if (message.TryGetProperty("method", out var method))
                {
                    var name = method.GetString()!;
                    if (!Contract.GetProperty("notifications").TryGetProperty(name, out var shape))
                    {
                        problems.Add($"notification {name} is not in the contract");
                        continue;
                    }

                    Check(message.GetProperty("params"), shape, $"notification {name}", problems);
                    continue;
                }

                var id = message.GetProperty("id").GetInt64();
                var methodName = answered[id];
                if (message.TryGetProperty("error", out var error))
                {
                    Assert.True(methodName is "exec_tty", $"{methodName} failed: {error}"); // exec_tty was cancelled by close
                    Assert.Contains(error.GetProperty("code").GetInt32(), Contract.GetProperty("errors").EnumerateObject().Select(e => e.Value.GetInt32()));
                    continue;
                }

                var methodContract = Contract.GetProperty("methods").GetProperty(methodName);
                Assert.NotEqual(JsonValueKind.False, methodContract.TryGetProperty("answered", out var a) ? a.ValueKind : JsonValueKind.True);
                Check(message.GetProperty("result"), methodContract.GetProperty("result"), $"result of {methodName}", problems);
            }

            Assert.True(problems.Count == 0, string.Join("\n", problems));
            var notificationNames = rpc.Received.Where(m => m.TryGetProperty("method", out _)).Select(m => m.GetProperty("method").GetString()).ToHashSet();
            Assert.Contains("event", notificationNames);
            Assert.Contains("exec_pipe.ready", notificationNames);
            Assert.Contains("exec_tty.stdout", notificationNames);
        }
    }

    [Fact]
    public void The_checker_finds_a_missing_a_wrongly_typed_and_an_unlisted_field()
    {
        var shape = Contract.GetProperty("methods").GetProperty("exec").GetProperty("result");
        var problems = new List<string>();
        Check(JsonDocument.Parse("""{"exit_code":"0","stdout":"@@","extra":1}""").RootElement, shape, "exec", problems);
        Assert.Contains(problems, p => p.Contains("stderr", StringComparison.Ordinal) && p.Contains("missing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("exit_code", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("stdout", StringComparison.Ordinal) && p.Contains("base64", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("extra", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_method_the_server_routes_is_in_the_contract_and_the_other_way_round()
    {
        var contract = Contract.GetProperty("methods").EnumerateObject().Select(m => m.Name).ToHashSet();
        var server = RpcSession.Methods.Concat(["create", "close", "cancel", "exec_pipe.stdin", "exec_tty.stdin", "exec_pipe.stdin_eof", "exec_tty.stdin_eof", "exec_tty.resize"]).ToHashSet();
        Assert.Equal(contract.Order(), server.Order());
        Assert.Equal(RpcErrorCodes.Cancelled, Contract.GetProperty("errors").GetProperty("cancelled").GetInt32());
        Assert.Equal(LineReader.MaxLine, Contract.GetProperty("max_line_bytes").GetInt32());
    }

    /// <summary>Checks <paramref name="value"/> against a <c>{fields}</c> shape or a <c>#Type</c> reference.</summary>
    internal static void Check(JsonElement value, JsonElement shape, string where, List<string> problems)
    {
        if (shape.ValueKind == JsonValueKind.String)
        {
            shape = Contract.GetProperty("types").GetProperty(shape.GetString()![1..]);
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{where}: expected an object, got {value.ValueKind}");
            return;
        }

        var fields = shape.GetProperty("fields");
        foreach (var field in fields.EnumerateObject())
        {
            var required = field.Value.TryGetProperty("required", out var r) && r.GetBoolean();
            if (!value.TryGetProperty(field.Name, out var item))
            {
                if (required)
                {
                    problems.Add($"{where}: required field {field.Name} is missing");
                }

                continue;
            }

            CheckType(item, field.Value.GetProperty("type").GetString()!, $"{where}.{field.Name}", problems);
        }

        foreach (var property in value.EnumerateObject())
        {
            if (!fields.TryGetProperty(property.Name, out _))
            {
                problems.Add($"{where}: field {property.Name} is not in the contract");
            }
        }
    }

    private static void CheckType(JsonElement value, string type, string where, List<string> problems)
    {
        if (type.Contains('|', StringComparison.Ordinal))
        {
            var attempts = type.Split('|').Select(t =>
            {
                var local = new List<string>();
                CheckType(value, t, where, local);
                return local;
            }).ToList();
            if (attempts.All(a => a.Count > 0))
            {
                problems.Add($"{where}: matches none of {type}");
            }

            return;
        }

        bool ok;
        switch (type)
        {
            case "string":
                ok = value.ValueKind == JsonValueKind.String;
                break;
            case "base64":
                ok = value.ValueKind == JsonValueKind.String && IsBase64(value.GetString()!);
                break;
            case "integer":
                ok = value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _);
                break;
            case "number":
                ok = value.ValueKind == JsonValueKind.Number;
                break;
            case "boolean":
                ok = value.ValueKind is JsonValueKind.True or JsonValueKind.False;
                break;
            case "object":
                ok = value.ValueKind == JsonValueKind.Object;
                break;
            default:
                if (type.StartsWith("array<", StringComparison.Ordinal))
                {
                    ok = value.ValueKind == JsonValueKind.Array;
                    if (ok)
                    {
                        var i = 0;
                        foreach (var item in value.EnumerateArray())
                        {
                            CheckType(item, type[6..^1], $"{where}[{i++}]", problems);
                        }
                    }
                }
                else if (type.StartsWith("map<", StringComparison.Ordinal))
                {
                    ok = value.ValueKind == JsonValueKind.Object;
                    if (ok)
                    {
                        foreach (var item in value.EnumerateObject())
                        {
                            CheckType(item.Value, type[4..^1], $"{where}.{item.Name}", problems);
                        }
                    }
                }
                else if (type.StartsWith('#'))
                {
                    Check(value, JsonDocument.Parse($"\"{type}\"").RootElement, where, problems);
                    ok = true;
                }
                else
                {
                    problems.Add($"{where}: unknown contract type {type}");
                    ok = true;
                }

                break;
        }

        if (!ok)
        {
            problems.Add($"{where}: expected {type}, got {value.ValueKind}");
        }
    }

    private static bool IsBase64(string text)
    {
        var buffer = new byte[text.Length];
        return Convert.TryFromBase64String(text, buffer, out _);
    }

    private static JsonElement LoadContract()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Matchlock.slnx")))
        {
            dir = dir.Parent;
        }

        var path = Path.Combine(dir?.FullName ?? throw new FileNotFoundException("the repository root (Matchlock.slnx) is not above the test binaries"), "contract", "rpc.json");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone();
    }
}
