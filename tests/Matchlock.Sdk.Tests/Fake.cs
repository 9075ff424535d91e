namespace Matchlock.Sdk.Tests;

/// <summary>Shortcuts for starting a sandbox against a <see cref="FakeServer"/>.</summary>
internal static class Fake
{
    /// <summary>Generous for two shared cores; a hang fails the test instead of the run.</summary>
    public const int Timeout = 30_000;

    public static SandboxOptions Busybox { get; } = new() { Image = "busybox" };

    public static CancellationToken Token => TestContext.Current.CancellationToken;

    public static async Task<(FakeServer Server, Sandbox Sandbox)> LaunchAsync(FakeServer? server = null, SandboxOptions? options = null, TimeSpan? closeTimeout = null)
    {
        server ??= new FakeServer();
        var sandbox = await MatchlockClient.LaunchAsync(options ?? Busybox, server.ClientOptions(closeTimeout), Token);
        return (server, sandbox);
    }

    /// <summary>Waits for the request the client sent for <paramref name="method"/> (the n-th one).</summary>
    public static async Task<FakeCall> WaitForAsync(this FakeServer server, string method, int nth = 1)
    {
        await Matchlock.Tests.Eventually.Until(() => server.Calls(method).Count() >= nth, TimeSpan.FromSeconds(10), $"request {method} #{nth}");
        return server.Calls(method).ElementAt(nth - 1);
    }
}
