namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// <c>image rm</c> removes a tag only; <c>image gc</c> then deletes exactly the blobs and root
/// filesystems no remaining tag references (a base layer shared with a tagged image stays).
/// </summary>
public sealed class ImageGcTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    [Fact]
    public async Task Gc_after_rm_frees_only_what_no_tag_references()
    {
        RegistryPrerequisites.EnsureCli();
        await using var home = new PullHome();
        var a = fixture.Ref("shared-a:1");
        var b = fixture.Ref("shared-b:1");
        Assert.Equal(0, (await home.RunAsync(["build", a], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        Assert.Equal(0, (await home.RunAsync(["build", b], timeout: TimeSpan.FromMinutes(3))).ExitCode);
        var both = TestImageCatalog.SharedA.AllContent().Concat(TestImageCatalog.SharedB.AllContent()).ToList();
        home.AssertBlobsAre(both);

        var rm = await home.RunAsync(["image", "rm", a]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.DoesNotContain(await home.ListAsync(), i => i.Tag == a);
        home.AssertBlobsAre(both); // rm drops the tag; gc frees the content

        var gc = await home.RunAsync(["image", "gc"]);
        Assert.True(gc.ExitCode == 0, gc.ToString());
        Assert.False(string.IsNullOrWhiteSpace(gc.Stdout), "gc should print what it freed: " + gc);
        home.AssertBlobsAre(TestImageCatalog.SharedB.AllContent());
        Assert.Contains(TestImageCatalog.SharedA.Layers[0].Hex, home.Blobs()); // the shared base stays
        Assert.Equal([Path.GetFileName(home.RootfsOf(TestImageCatalog.SharedB.Id))], home.Rootfs());
        Assert.Equal(TestImageCatalog.SharedB.Id, (await home.SingleImageAsync(b)).Id);

        var again = await home.RunAsync(["image", "gc"]);
        Assert.True(again.ExitCode == 0, again.ToString());
        home.AssertBlobsAre(TestImageCatalog.SharedB.AllContent());

        Assert.Equal(0, (await home.RunAsync(["image", "rm", b])).ExitCode);
        Assert.Equal(0, (await home.RunAsync(["image", "gc"])).ExitCode);
        Assert.Empty(home.Blobs());
        Assert.Empty(home.Rootfs());
        home.AssertNoTempEntries();
    }
}
