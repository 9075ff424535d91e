using Matchlock.Core.Kernel;

namespace Matchlock.Core.Tests.Kernel;

/// <summary>
/// Building, caching and naming the initramfs. Unpacking it with cpio (it holds /dev/console, a
/// device node only root can create) is proven in Matchlock.Integration.Tests/Kernel.
/// </summary>
public sealed class InitramfsBuilderTests : IDisposable
{
    private const string Version = FakeModuleTree.Version;
    private readonly FakeModuleTree _tree = new();

    private GuestKernel Kernel => _tree.Kernel;

    private string Guest => _tree.Guest;

    private string Cache => _tree.Cache;

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Reuses_the_cached_archive_and_rebuilds_when_the_guest_changes()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = new InitramfsBuilder(Kernel, Cache, ["virtio_mmio"]);
        var first = await builder.GetOrBuildAsync(Guest, ct);
        var stamp = File.GetLastWriteTimeUtc(first.InitramfsPath);
        var again = await builder.GetOrBuildAsync(Guest, ct);
        Assert.Equal(first.InitramfsPath, again.InitramfsPath);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(again.InitramfsPath));

        await File.WriteAllTextAsync(Guest, "guest-binary-v2", ct);
        var changed = await builder.GetOrBuildAsync(Guest, ct);
        Assert.NotEqual(first.InitramfsPath, changed.InitramfsPath);

        var fewerModules = await new InitramfsBuilder(Kernel, Cache, ["virtio"]).GetOrBuildAsync(Guest, ct);
        Assert.NotEqual(changed.InitramfsPath, fewerModules.InitramfsPath);
    }

    [Fact]
    public async Task Concurrent_builders_agree_and_leave_no_temp_files()
    {
        var ct = TestContext.Current.CancellationToken;
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            Task.Run(() => new InitramfsBuilder(Kernel, Cache, ["virtio_mmio"]).GetOrBuildAsync(Guest, ct), ct)));
        Assert.Single(results.Select(r => r.InitramfsPath).Distinct());
        var dir = Path.GetDirectoryName(results[0].InitramfsPath)!;
        Assert.Equal(["initramfs.cpio"], Directory.GetFiles(dir).Select(Path.GetFileName));
        var listing = await HostTools.RunAsync("cpio", "-it --quiet", results[0].InitramfsPath, null, ct);
        Assert.Contains("etc/matchlock/modules", listing, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_guest_binary_is_reported()
    {
        var ct = TestContext.Current.CancellationToken;
        var ex = await Assert.ThrowsAsync<FileNotFoundException>(
            () => new InitramfsBuilder(Kernel, Cache).GetOrBuildAsync(Path.Combine(_tree.Root, "nope"), ct));
        Assert.Contains("MATCHLOCK_GUEST_BIN", ex.Message, StringComparison.Ordinal);
    }
}
