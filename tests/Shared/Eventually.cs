namespace Matchlock.Tests;

/// <summary>
/// Waits for a condition instead of sleeping for a fixed time: polls every 20 ms and fails with
/// what was awaited once <c>timeout</c> has passed. Fast when the machine is fast, patient when it is
/// loaded (two shared cores). Compiled into every test project (tests/Directory.Build.props).
/// </summary>
internal static class Eventually
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    /// <summary>Returns once <paramref name="condition"/> holds; fails the test naming <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static Task Until(Func<bool> condition, TimeSpan timeout, string what) =>
        Until(() => Task.FromResult(condition()), timeout, what);

    /// <inheritdoc cref="Until(Func{bool}, TimeSpan, string)"/>
    public static async Task Until(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var ct = TestContext.Current.CancellationToken;
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {timeout.TotalSeconds:0.#} s waiting for {what}");
            await Task.Delay(Interval, ct);
        }
    }
}
