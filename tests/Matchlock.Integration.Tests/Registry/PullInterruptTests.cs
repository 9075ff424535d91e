using System.Diagnostics;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Pulls that overlap or are cut short: two concurrent pulls of one image both succeed with one
/// stored copy; a pull killed with SIGKILL mid-blob leaves leftovers only until the next pull
/// sweeps them; Ctrl-C (SIGINT to the process group) ends a pull quickly with the store unchanged.
/// </summary>
public sealed class PullInterruptTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private const long StallAfter = 65_536; // past every config and manifest, inside the base layer

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PullHome NewHome()
    {
        RegistryPrerequisites.EnsureCli();
        return new PullHome();
    }

    [Fact]
    public async Task Concurrent_pulls_of_one_image_both_succeed_and_store_one_copy()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, cancellationToken: Ct);
        var name = proxy.Host + "/busybox:1";
        var results = await Task.WhenAll(home.RunAsync(["pull", name]), home.RunAsync(["pull", name]));
        foreach (var r in results)
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.EndsWith(name + "\n", r.Stdout, StringComparison.Ordinal);
        }

        home.AssertBlobsAre(TestImageCatalog.Gzip.AllContent());
        home.AssertNoTempEntries();
        Assert.Single(await home.ListAsync());
        var baseLayer = TestImageCatalog.Gzip.Layers[0].Digest;
        Assert.True(proxy.BlobGets(baseLayer) == 1,
            $"the base layer was fetched {proxy.BlobGets(baseLayer)} times by two concurrent pulls (one download shared is the goal)");
    }

    [Fact]
    public async Task A_pull_killed_mid_blob_is_recovered_by_the_next_pull()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { StallBlobsAfter = StallAfter }, Ct);
        var name = proxy.Host + "/busybox:1";
        Process? cli = null;
        var first = home.RunAsync(["pull", name], started: p => cli = p);
        await proxy.Stalled.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.Equal(0, Interop.Kill(cli!.Id, 9));
        var killed = await first.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.NotEqual(0, killed.ExitCode);

        proxy.Mode = FaultProxyMode.PassThrough;
        proxy.ReleaseStalls();
        var second = await home.RunAsync(["pull", name]);
        PullAssert.Pulled(second, name, TestImageCatalog.Gzip.Digest);
        home.AssertBlobsAre(TestImageCatalog.Gzip.AllContent());
        home.AssertNoTempEntries();
        Assert.Single(await home.ListAsync());
    }

    [Fact]
    public async Task Ctrl_c_ends_a_pull_quickly_and_leaves_the_store_unchanged()
    {
        await using var home = NewHome();
        var before = await home.SnapshotAsync();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { StallBlobsAfter = StallAfter }, Ct);
        var name = proxy.Host + "/busybox:1";
        Process? cli = null;
        var pull = home.RunAsync(["pull", name], started: p => cli = p);
        await proxy.Stalled.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        // As a terminal's Ctrl-C: SIGINT to matchlock's whole process group (it leads one via setsid).
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Interop.Kill(-cli!.Id, 2));
        var r = await pull.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"Ctrl-C took {clock.Elapsed.TotalSeconds:0.0} s to end the pull");
        Assert.True(r.ExitCode != 0, r.ToString());
        await home.AssertUnchangedAsync(before);
    }
}
