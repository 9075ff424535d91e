namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// <c>matchlock pull</c> / <c>build</c> / <c>image ls</c> against a local registry, without a VM:
/// references by tag and digest, platform choice in indexes, both manifest formats, every layer
/// compression (checked inside the built root filesystem), shared layers, warm and forced re-pulls.
/// Each test has its own empty MATCHLOCK_HOME.
/// </summary>
public sealed class PullTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PullHome NewHome()
    {
        RegistryPrerequisites.EnsureCli();
        return new PullHome();
    }

    [Fact]
    public async Task Pull_by_tag_stores_the_image_and_prints_digest_status_and_name()
    {
        await using var home = NewHome();
        var image = TestImageCatalog.Gzip;
        var name = fixture.Ref("busybox:1");
        var r = await home.RunAsync(["pull", name]);
        PullAssert.Pulled(r, name, image.Digest);
        home.AssertBlobsAre(image.AllContent());
        home.AssertNoTempEntries();

        var entry = await home.SingleImageAsync(name);
        Assert.Equal(image.Id, entry.Id);
        Assert.Equal(image.Digest, entry.Digest);
        Assert.Equal(name, entry.Source);
        Assert.NotEqual("", entry.Size);
        Assert.NotEqual("", entry.Created);
    }

    [Fact]
    public async Task Pull_by_digest_fetches_exactly_that_manifest()
    {
        await using var home = NewHome();
        var image = TestImageCatalog.Zstd;
        var name = fixture.Ref("zstd@" + image.Digest);
        var r = await home.RunAsync(["pull", name]);
        PullAssert.Pulled(r, name, image.Digest);
        home.AssertBlobsAre(image.AllContent());
        var images = await home.ListAsync();
        Assert.Contains(images, i => i.Id == image.Id && i.Digest == image.Digest);
    }

    [Fact]
    public async Task Pull_with_a_local_tag_lists_the_image_under_that_tag_with_its_source()
    {
        await using var home = NewHome();
        var name = fixture.Ref("busybox:1");
        var r = await home.RunAsync(["pull", "-t", "mybox:dev", name]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var entry = await home.SingleImageAsync("mybox:dev");
        Assert.Equal(TestImageCatalog.Gzip.Id, entry.Id);
        Assert.Equal(name, entry.Source);
    }

    [Fact]
    public async Task An_oci_index_resolves_to_linux_amd64_and_reports_the_index_digest()
    {
        await using var home = NewHome();
        var name = fixture.Ref("multi:1");
        var r = await home.RunAsync(["pull", name]);
        PullAssert.Pulled(r, name, TestImageCatalog.Multi.Digest);
        var entry = await home.SingleImageAsync(name);
        Assert.Equal(TestImageCatalog.MultiAmd64.Id, entry.Id);
        Assert.Equal(TestImageCatalog.Multi.Digest, entry.Digest);
        Assert.DoesNotContain(TestImageCatalog.MultiArm64.Config!.Hex, home.Blobs());
        home.AssertNoTempEntries();
    }

    [Fact]
    public async Task Platform_flag_picks_the_arm64_manifest_of_an_index()
    {
        await using var home = NewHome();
        var name = fixture.Ref("multi:1");
        var r = await home.RunAsync(["pull", "--platform", "linux/arm64", name]);
        PullAssert.Pulled(r, name, TestImageCatalog.Multi.Digest);
        Assert.Equal(TestImageCatalog.MultiArm64.Id, (await home.SingleImageAsync(name)).Id);
        Assert.Contains(TestImageCatalog.MultiArm64.Config!.Hex, home.Blobs());
        Assert.DoesNotContain(TestImageCatalog.MultiAmd64.Config!.Hex, home.Blobs());
    }

    [Fact]
    public async Task An_index_without_linux_amd64_fails_listing_the_platforms_it_has()
    {
        await using var home = NewHome();
        var before = await home.SnapshotAsync();
        var name = fixture.Ref("noamd64:1");
        var line = PullAssert.Failed(await home.RunAsync(["pull", name]), name, "linux/amd64", "platform");
        Assert.Contains("linux/arm64", line, StringComparison.Ordinal);
        Assert.Contains("linux/ppc64le", line, StringComparison.Ordinal);
        await home.AssertUnchangedAsync(before);
    }

    [Fact]
    public async Task Docker_schema2_manifest_and_manifest_list_are_pulled()
    {
        await using var home = NewHome();
        var single = fixture.Ref("docker:1");
        PullAssert.Pulled(await home.RunAsync(["pull", single]), single, TestImageCatalog.Docker.Digest);
        Assert.Equal(TestImageCatalog.Docker.Id, (await home.SingleImageAsync(single)).Id);

        var list = fixture.Ref("list:1");
        PullAssert.Pulled(await home.RunAsync(["pull", list]), list, TestImageCatalog.DockerList.Digest);
        Assert.Equal(TestImageCatalog.ListAmd64.Id, (await home.SingleImageAsync(list)).Id);
        home.AssertNoTempEntries();
    }

    [Theory]
    [InlineData("busybox:1", "oci-gzip")]
    [InlineData("zstd:1", "oci-zstd")]
    [InlineData("uncompressed:1", "oci-uncompressed")]
    [InlineData("docker:1", "docker-gzip")]
    public async Task Build_unpacks_every_layer_compression_into_the_root_filesystem(string repoTag, string marker)
    {
        await using var home = NewHome();
        var image = TestImageCatalog.Tags[repoTag];
        var name = fixture.Ref(repoTag);
        var r = await home.RunAsync(["build", name], timeout: TimeSpan.FromMinutes(3));
        PullAssert.Pulled(r, name, image.Digest);
        Assert.Equal(marker + "\n", await home.ReadMarkerFromRootfsAsync(image.Id));
        home.AssertNoTempEntries();
    }

    [Fact]
    public async Task Two_images_sharing_a_base_layer_store_and_fetch_it_once()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, cancellationToken: Ct);
        var baseLayer = TestImageCatalog.SharedA.Layers[0];
        Assert.Equal(baseLayer.Digest, TestImageCatalog.SharedB.Layers[0].Digest);

        Assert.Equal(0, (await home.RunAsync(["pull", proxy.Host + "/shared-a:1"])).ExitCode);
        var b = await home.RunAsync(["pull", proxy.Host + "/shared-b:1"]);
        PullAssert.Pulled(b, proxy.Host + "/shared-b:1", TestImageCatalog.SharedB.Digest);

        home.AssertBlobsAre(TestImageCatalog.SharedA.AllContent().Concat(TestImageCatalog.SharedB.AllContent()));
        Assert.True(proxy.BlobGets(baseLayer.Digest) == 1, $"the shared base layer was fetched {proxy.BlobGets(baseLayer.Digest)} times");
        Assert.Equal(2, (await home.ListAsync()).Count);
    }

    [Fact]
    public async Task A_warm_re_pull_is_up_to_date_and_downloads_no_blob()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, cancellationToken: Ct);
        var name = proxy.Host + "/busybox:1";
        PullAssert.Pulled(await home.RunAsync(["pull", name]), name, TestImageCatalog.Gzip.Digest);
        var before = await home.SnapshotAsync();

        proxy.ResetCounters();
        var again = await home.RunAsync(["pull", name]);
        PullAssert.Pulled(again, name, TestImageCatalog.Gzip.Digest, downloaded: false);
        Assert.True(proxy.BlobGets() == 0, "blobs fetched on a warm re-pull: " + string.Join(", ", proxy.AllRequests));
        await home.AssertUnchangedAsync(before);
    }

    [Fact]
    public async Task Force_re_downloads_the_layers()
    {
        await using var home = NewHome();
        await using var proxy = await FaultProxy.StartAsync(fixture.Registry, cancellationToken: Ct);
        var name = proxy.Host + "/busybox:1";
        Assert.Equal(0, (await home.RunAsync(["pull", name])).ExitCode);

        proxy.ResetCounters();
        var forced = await home.RunAsync(["pull", "--force", name]);
        Assert.True(forced.ExitCode == 0, forced.ToString());
        foreach (var layer in TestImageCatalog.Gzip.Layers)
        {
            Assert.True(proxy.BlobGets(layer.Digest) >= 1, $"--force did not fetch {layer.Digest}: " + string.Join(", ", proxy.AllRequests));
        }

        home.AssertBlobsAre(TestImageCatalog.Gzip.AllContent());
        home.AssertNoTempEntries();
        Assert.Single(await home.ListAsync());
    }

    [Fact]
    public async Task Image_ls_json_has_every_field_and_the_table_has_the_columns()
    {
        await using var home = NewHome();
        var name = fixture.Ref("busybox:1");
        Assert.Equal(0, (await home.RunAsync(["pull", name])).ExitCode);
        var entry = await home.SingleImageAsync(name);
        Assert.Equal(new ImageEntry(name, TestImageCatalog.Gzip.Id, TestImageCatalog.Gzip.Digest, entry.Size, entry.Created, name), entry);

        var table = await home.RunAsync(["image", "ls"]);
        Assert.True(table.ExitCode == 0, table.ToString());
        var header = table.Stdout.Split('\n')[0];
        foreach (var column in new[] { "TAG", "DIGEST", "ID", "SIZE", "CREATED", "SOURCE" })
        {
            Assert.Contains(column, header, StringComparison.Ordinal);
        }

        Assert.Contains(name, table.Stdout, StringComparison.Ordinal);
    }
}
