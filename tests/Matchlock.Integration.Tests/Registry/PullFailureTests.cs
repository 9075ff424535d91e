namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Pulls that must fail with one <c>matchlock: …</c> line naming the image and the cause, exit
/// 125, and leave the store exactly as it was (no tag, no blob, no root filesystem, no
/// <c>.tmp-*</c>): corrupted and truncated blobs, unreachable or refusing registries, unknown
/// names, hostile layers and lying manifests.
/// </summary>
public sealed class PullFailureTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(PullHome Home, StoreState Before)> NewHomeAsync()
    {
        RegistryPrerequisites.EnsureCli();
        var home = new PullHome();
        return (home, await home.SnapshotAsync());
    }

    [Fact]
    public async Task A_blob_that_does_not_match_its_digest_is_rejected()
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        var name = fixture.Ref("bad/tampered:1");
        var line = PullAssert.Failed(await home.RunAsync(["pull", name]), name, "digest");
        Assert.Contains(TestImageCatalog.Tampered.Layers[^1].Digest, line, StringComparison.Ordinal);
        await home.AssertUnchangedAsync(before);
    }

    [Fact]
    public async Task A_full_disk_fails_the_pull_cleanly_and_the_store_stays_usable()
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        // The store on a 24 MiB tmpfs: the 64 MiB layer downloads (it is ~64 KiB compressed) but
        // cannot be unpacked, so the disk fills up in the middle of the pull.
        Directory.CreateDirectory(home.ImagesDir);
        await Mount(["-t", "tmpfs", "-o", "size=24m", "matchlock-test", home.ImagesDir]);
        try
        {
            var name = fixture.Ref("big:1");
            var line = PullAssert.Failed(await home.RunAsync(["pull", name]), name, "no space left");
            Assert.Contains("image gc", line, StringComparison.Ordinal);
            await home.AssertUnchangedAsync(before);

            // Nothing half-written holds the space: a pull that fits still succeeds.
            var small = fixture.Ref("busybox:1");
            var ok = await home.RunAsync(["pull", small]);
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.Equal([small], (await home.ListAsync()).Select(i => i.Tag));
            home.AssertNoTempEntries();
        }
        finally
        {
            await Mount(["-l", home.ImagesDir], "umount");
        }
    }

    private static async Task Mount(string[] args, string program = "mount")
    {
        var psi = new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(psi)!;
        var stderr = await process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} failed: {stderr}");
    }

    [Fact]
    public async Task A_truncated_blob_body_is_rejected()
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { TruncateBlobsAfter = 65_536 }, Ct);
        var name = proxy.Host + "/busybox:1";
        PullAssert.Failed(await home.RunAsync(["pull", name]), name,
            "truncated", "unexpected end", "incomplete", "short", "premature", "connection", "reset", "digest", "size");
        await home.AssertUnchangedAsync(before);
    }

    [Fact]
    public async Task A_registry_that_is_down_cannot_be_reached()
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        var name = $"127.0.0.1:{LocalRegistry.FreePort()}/busybox:1"; // nothing listens there
        PullAssert.Failed(await home.RunAsync(["pull", name], timeout: TimeSpan.FromSeconds(60)), name, "cannot reach");
        await home.AssertUnchangedAsync(before);
    }

    [Theory]
    [InlineData("nosuchrepo:1")]
    [InlineData("busybox:nosuchtag")]
    [InlineData("busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Unknown_repositories_tags_and_digests_are_not_found(string repoRef)
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        var name = fixture.Ref(repoRef);
        PullAssert.Failed(await home.RunAsync(["pull", name]), name, "not found");
        await home.AssertUnchangedAsync(before);
    }

    [Theory]
    [InlineData(403, "denied", "forbidden", "403")]
    [InlineData(500, "500", "server error", "internal")]
    public async Task A_registry_answering_errors_fails_the_pull(int status, string cause1, string cause2, string cause3)
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, new FaultProxyMode { FailAllWith = status }, Ct);
        var name = proxy.Host + "/busybox:1";
        PullAssert.Failed(await home.RunAsync(["pull", name], timeout: TimeSpan.FromSeconds(90)), name, cause1, cause2, cause3);
        await home.AssertUnchangedAsync(before);
    }

    // Hostile layers are refused when the layer is unpacked: `build` (= pull + prepare) must
    // fail as a whole and keep nothing of the pull either.
    [Theory]
    [InlineData("bad/traversal:1", new[] { "traversal", "outside", "escape", "..", "path" })]
    [InlineData("bad/device:1", new[] { "device" })]
    public async Task Hostile_layers_are_rejected_and_nothing_is_kept(string repoTag, string[] causes)
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        var name = fixture.Ref(repoTag);
        PullAssert.Failed(await home.RunAsync(["build", name], timeout: TimeSpan.FromMinutes(3)), name, causes);
        await home.AssertUnchangedAsync(before);
        Assert.False(File.Exists("/etc/evil"));
    }

    [Theory]
    [InlineData("bad/layer-type:1")]
    [InlineData("bad/config-type:1")]
    public async Task Unsupported_media_types_are_rejected(string repoTag)
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        var name = fixture.Ref(repoTag);
        PullAssert.Failed(await home.RunAsync(["pull", name]), name, "media type", "mediatype", "unsupported");
        await home.AssertUnchangedAsync(before);
    }

    [Theory]
    [InlineData("bad/absurd-layer:1")]
    [InlineData("bad/absurd-config:1")]
    public async Task Absurd_descriptor_sizes_are_rejected_before_downloading(string repoTag)
    {
        var (home, before) = await NewHomeAsync();
        await using var _ = home;
        var name = fixture.Ref(repoTag);
        PullAssert.Failed(await home.RunAsync(["pull", name], timeout: TimeSpan.FromSeconds(60)), name, "size", "too large", "large", "exceeds");
        await home.AssertUnchangedAsync(before);
    }
}
