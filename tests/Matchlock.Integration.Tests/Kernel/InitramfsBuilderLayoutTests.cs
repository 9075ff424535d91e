using Matchlock.Core.Kernel;
using Matchlock.Core.Tests.Kernel;

namespace Matchlock.Integration.Tests.Kernel;

/// <summary>
/// The initramfs unpacked by GNU cpio has the contract layout. Needs root: the archive holds
/// /dev/console, and only root may mknod it on extraction.
/// </summary>
public sealed class InitramfsBuilderLayoutTests : IDisposable
{
    private const string Version = FakeModuleTree.Version;
    private readonly FakeModuleTree _tree = new();

    private GuestKernel Kernel => _tree.Kernel;

    private string Guest => _tree.Guest;

    private string Cache => _tree.Cache;

    public void Dispose() => _tree.Dispose();

    [Fact]
    public async Task Builds_the_contract_layout_in_load_order()
    {
        HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.Cpio);
        var ct = TestContext.Current.CancellationToken;
        var result = await new InitramfsBuilder(Kernel, Cache, ["virtio_mmio"]).GetOrBuildAsync(Guest, ct);

        Assert.Equal(Version, result.KernelVersion);
        Assert.Equal("/boot/vmlinuz-x", result.KernelPath);
        Assert.Matches($@"/kernel/{Version}-[0-9a-f]{{16}}/initramfs\.cpio$", result.InitramfsPath);

        var outDir = Directory.CreateDirectory(Path.Combine(_tree.Root, "x")).FullName;
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
}
