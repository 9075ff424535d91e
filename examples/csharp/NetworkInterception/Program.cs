// Network interception: a static rule that edits request headers, an after-rule that rewrites a
// server-sent-event stream per `data:` line, and a hook answered in this process.
using System.Text.Json;
using Matchlock.Examples;
using Matchlock.Sdk;

return await Example.RunAsync(async ct =>
{
    var hookCalls = 0;
    await using var upstream = Upstream.Start();
    var (options, guestUrl, _) = Example.Reach(new SandboxOptions { Image = Example.Image }, upstream.Url);
    var guestHost = new Uri(guestUrl).Host;
    options = options with
    {
        NetworkRules =
        [
            new NetworkHookRule
            {
                Name = "tag requests",
                Phase = NetworkHookPhase.Before,
                Hosts = [guestHost],
                SetHeaders = new Dictionary<string, string> { ["X-Static-Rule"] = "set-by-host" },
                DeleteHeaders = ["X-Remove-Me"],
            },
            new NetworkHookRule
            {
                Name = "rewrite the stream",
                Phase = NetworkHookPhase.After,
                Hosts = [guestHost],
                Path = "/sse",
                BodyReplacements = [new BodyReplacement("world", "sandbox")],
            },
            new NetworkHookRule
            {
                Name = "callback",
                Phase = NetworkHookPhase.Before,
                Hosts = [guestHost],
                Path = "/echo",
                Timeout = TimeSpan.FromSeconds(5),
                Hook = (request, _) =>
                {
                    Interlocked.Increment(ref hookCalls);

                    // Headers replace the whole map: keep what came, add ours.
                    var headers = request.RequestHeaders.ToDictionary(h => h.Key, h => h.Value, StringComparer.OrdinalIgnoreCase);
                    headers["X-Hook"] = [$"{request.Method} {request.Path}"];
                    return ValueTask.FromResult<NetworkHookResult?>(new NetworkHookResult { Request = new NetworkRequestMutation { Headers = headers } });
                },
            },
        ],
    };

    await using var sandbox = await MatchlockClient.LaunchAsync(options, Example.Client, ct);
    Console.WriteLine($"sandbox {sandbox.Id} is up");

    var echo = await sandbox.ExecAsync($"wget -q -O - --header 'X-Remove-Me: 1' {guestUrl}/echo", cancellationToken: ct);
    Example.Check(echo.Succeeded, $"GET /echo went through (stderr: {echo.StderrText.Trim()})");
    using var echoed = JsonDocument.Parse(echo.Stdout);
    var headers = echoed.RootElement.GetProperty("headers");
    Example.Check(headers.TryGetProperty("x-static-rule", out var tag) && tag.GetString() == "set-by-host", "the static rule set X-Static-Rule");
    Example.Check(!headers.TryGetProperty("x-remove-me", out _), "the static rule deleted X-Remove-Me");
    Example.Check(headers.TryGetProperty("x-hook", out var hooked) && hooked.GetString() == "GET /echo", "the callback hook in this process added X-Hook");
    Example.Check(Volatile.Read(ref hookCalls) >= 1, $"the hook ran here ({hookCalls} call(s))");

    var sse = await sandbox.ExecAsync($"wget -q -O - {guestUrl}/sse", cancellationToken: ct);
    Console.Write(sse.StdoutText);
    Example.Check(sse.StdoutText.Contains("data: hello sandbox 2", StringComparison.Ordinal) && !sse.StdoutText.Contains("world", StringComparison.Ordinal), "the SSE body was rewritten per data: line");
});
