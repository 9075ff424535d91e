namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// Pulled images boot (four VMs in all): <c>run --image</c> pulls a missing image on first use
/// (an OCI index, so also the amd64 choice), a zstd image and a Docker schema 2 image run, and
/// <c>run --pull</c> refreshes a tag that moved in the registry.
/// </summary>
public sealed class PullRunTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PullHome NewHome()
    {
        VmPrerequisites.Ensure();
        RegistryPrerequisites.EnsureCli();
        return new PullHome();
    }

    private static Task<CliResult> CatMarker(PullHome home, string image, params string[] flags) =>
        home.RunAsync(["run", "--rm", "--image", image, .. flags, "--", "cat", TestImages.MarkerPath], timeout: TimeSpan.FromMinutes(4));

    [Fact]
    public async Task Run_pulls_a_missing_image_on_first_use_and_takes_amd64_from_an_index()
    {
        await using var home = NewHome();
        var name = fixture.Ref("multi:1");
        var r = await CatMarker(home, name);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("multi-amd64\n", r.Stdout);
        Assert.Equal(TestImageCatalog.MultiAmd64.Id, (await home.SingleImageAsync(name)).Id);
        home.AssertNoTempEntries();
    }

    [Theory]
    [InlineData("zstd:1", "oci-zstd")]
    [InlineData("docker:1", "docker-gzip")]
    public async Task Pulled_images_of_each_format_run(string repoTag, string marker)
    {
        await using var home = NewHome();
        var name = fixture.Ref(repoTag);
        PullAssert.Pulled(await home.RunAsync(["pull", name]), name, TestImageCatalog.Tags[repoTag].Digest);
        var r = await CatMarker(home, name);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(marker + "\n", r.Stdout);
    }

    [Fact]
    public async Task Run_with_pull_refreshes_a_tag_that_moved()
    {
        await using var home = NewHome();
        using var pusher = fixture.Registry.CreatePusher();
        await pusher.PushAsync("refresh", "1", TestImageCatalog.SharedA, Ct);
        var name = fixture.Ref("refresh:1");
        PullAssert.Pulled(await home.RunAsync(["pull", name]), name, TestImageCatalog.SharedA.Digest);

        await pusher.PushAsync("refresh", "1", TestImageCatalog.Next, Ct);
        var r = await CatMarker(home, name, "--pull");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("next\n", r.Stdout);
        var entry = await home.SingleImageAsync(name);
        Assert.Equal(TestImageCatalog.Next.Id, entry.Id);
        Assert.Equal(TestImageCatalog.Next.Digest, entry.Digest);
    }
}
