using Matchlock.Core.Kernel;

namespace Matchlock.Core.Tests.Kernel;

public sealed class InitramfsBuilderTests : IDisposable
{
    private const string Version = "6.1.0-99-cloud-amd64";
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("ml-initramfs-");

    public InitramfsBuilderTests()
    {
        var mods = Path.Combine(_root.FullName, "modules", Version);
        foreach (var (rel, bytes) in new[] { ("kernel/a/virtio_ring.ko", "ring"), ("kernel/a/virtio.ko", "virtio"), ("kernel/b/virtio_mmio.ko", "mmio"), ("kernel/n/failover.ko", "fo"), ("kernel/n/virtio_net.ko", "net") })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(mods, rel))!);
            File.WriteAllText(Path.Combine(mods, rel), bytes);
        }

        File.WriteAllLines(Path.Combine(mods, "modules.dep"),
        [
            "kernel/a/virtio_ring.ko:",
            "kernel/a/virtio.ko: kernel/a/virtio_ring.ko",
            "kernel/b/virtio_mmio.ko: kernel/a/virtio.ko kernel/a/virtio_ring.ko",
            "kernel/n/failover.ko:",
            "kernel/n/virtio_net.ko: kernel/n/failover.ko kernel/a/virtio.ko kernel/a/virtio_ring.ko",
        ]);
        Kernel = new GuestKernel("/boot/vmlinuz-x", mods, Version);
        Guest = Path.Combine(_root.FullName, "matchlock-guest");
        File.WriteAllText(Guest, "guest-binary-v1");
    }

    private GuestKernel Kernel { get; }

    private string Guest { get; }

    private string Cache => Path.Combine(_root.FullName, "cache");

    public void Dispose() => _root.Delete(recursive: true);

    [Fact]
    public async Task Builds_the_contract_layout_in_load_order()
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await new InitramfsBuilder(Kernel, Cache, ["virtio_mmio"]).GetOrBuildAsync(Guest, ct);

        Assert.Equal(Version, result.KernelVersion);
        Assert.Equal("/boot/vmlinuz-x", result.KernelPath);
        Assert.Matches($@"/kernel/{Version}-[0-9a-f]{{16}}/initramfs\.cpio$", result.InitramfsPath);

        var outDir = Directory.CreateDirectory(Path.Combine(_root.FullName, "x")).FullName;
        await HostTools.RunAsync("cpio", "-idm --quiet --no-absolute-filenames", result.InitramfsPath, outDir, ct);
        Assert.Equal("guest-binary-v1", await File.ReadAllTextAsync(Path.Combine(outDir, "init"), ct));
        Assert.True(File.GetUnixFileMode(Path.Combine(outDir, "init")).HasFlag(UnixFileMode.UserExecute | UnixFileMode.OtherExecute));
        Assert.Equal(
            $"/lib/modules/{Version}/kernel/a/virtio_ring.ko\n/lib/modules/{Version}/kernel/a/virtio.ko\n/lib/modules/{Version}/kernel/b/virtio_mmio.ko\n",
            await File.ReadAllTextAsync(Path.Combine(outDir, "etc/matchlock/modules"), ct));
        Assert.Equal("mmio", await File.ReadAllTextAsync(Path.Combine(outDir, $"lib/modules/{Version}/kernel/b/virtio_mmio.ko"), ct));

        // The NIC's modules are packed but listed apart, without what boot already loads.
        Assert.Equal(
            $"/lib/modules/{Version}/kernel/n/failover.ko\n/lib/modules/{Version}/kernel/n/virtio_net.ko\n",
            await File.ReadAllTextAsync(Path.Combine(outDir, "etc/matchlock/modules.net"), ct));
        Assert.Equal("net", await File.ReadAllTextAsync(Path.Combine(outDir, $"lib/modules/{Version}/kernel/n/virtio_net.ko"), ct));
    }

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
            () => new InitramfsBuilder(Kernel, Cache).GetOrBuildAsync(Path.Combine(_root.FullName, "nope"), ct));
        Assert.Contains("MATCHLOCK_GUEST_BIN", ex.Message, StringComparison.Ordinal);
    }
}
