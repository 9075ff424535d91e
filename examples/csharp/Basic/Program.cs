// Secret injection: the guest holds a placeholder; the host puts the real value into requests
// to the allowed upstream only.
using System.Text.Json;
using Matchlock.Examples;
using Matchlock.Sdk;

const string Secret = "sk-example-0123456789";

return await Example.RunAsync(async ct =>
{
    await using var upstream = Upstream.Start();
    var (options, guestUrl, secretHost) = Example.Reach(new SandboxOptions { Image = Example.Image }, upstream.Url);
    options = options with { Secrets = [new SandboxSecret("API_TOKEN", Secret, [secretHost])] };

    await using var sandbox = await MatchlockClient.LaunchAsync(options, Example.Client, ct);
    Console.WriteLine($"sandbox {sandbox.Id} is up");

    var seen = (await sandbox.ExecAsync("printf %s \"$API_TOKEN\"", cancellationToken: ct)).StdoutText;
    Example.Check(seen.StartsWith("SANDBOX_SECRET_", StringComparison.Ordinal), $"the guest sees a placeholder ({seen})");
    Example.Check(!seen.Contains(Secret, StringComparison.Ordinal), "the guest never sees the value");

    var request = await sandbox.ExecAsync($"wget -q -O - --header \"Authorization: Bearer $API_TOKEN\" {guestUrl}/echo", cancellationToken: ct);
    Example.Check(request.Succeeded, $"the request went through (stderr: {request.StderrText.Trim()})");
    using var echoed = JsonDocument.Parse(request.Stdout);
    var authorization = echoed.RootElement.GetProperty("headers").TryGetProperty("authorization", out var a) ? a.GetString() : null;
    Console.WriteLine($"upstream received Authorization: {authorization}");
    Example.Check(authorization == $"Bearer {Secret}", "the host injected the real value on the way out");
});
