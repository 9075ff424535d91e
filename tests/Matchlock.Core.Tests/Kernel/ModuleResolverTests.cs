using Matchlock.Core.Kernel;

namespace Matchlock.Core.Tests.Kernel;

public sealed class ModuleResolverTests
{
    // Shaped like the cloud kernel's file: full closure listed, load-first modules last.
    private static readonly string[] Dep =
    [
        "kernel/drivers/virtio/virtio_ring.ko:",
        "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        "kernel/net/core/failover.ko:",
        "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
        "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        "kernel/fs/squashfs/squashfs.ko.xz:",
        "kernel/fs/fuse/fuse.ko:",
        "",
    ];

    private static readonly string[] Builtin = ["kernel/fs/ext4/ext4.ko", "kernel/drivers/tty/serial/8250/8250.ko"];

    private static ModuleResolver Resolver => ModuleResolver.Parse(Dep, Builtin);

    [Fact]
    public void Dependencies_come_first_and_each_module_once()
    {
        var order = Resolver.Resolve(["virtio_mmio", "virtio_net", "virtio_blk", "virtio_mmio"]);
        Assert.Equal(
            [
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_mmio.ko",
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
                "kernel/drivers/block/virtio_blk.ko",
            ],
            order);
    }

    [Fact]
    public void Dash_and_underscore_are_the_same_name()
    {
        Assert.Equal("kernel/drivers/char/hw_random/virtio-rng.ko", Resolver.Resolve(["virtio_rng"])[^1]);
        Assert.Equal("kernel/drivers/virtio/virtio_mmio.ko", Resolver.Resolve(["virtio-mmio"])[^1]);
    }

    [Fact]
    public void Built_in_modules_are_skipped()
    {
        Assert.Equal(["kernel/fs/fuse/fuse.ko"], Resolver.Resolve(["ext4", "fuse", "8250"]));
    }

    [Fact]
    public void Unknown_module_is_a_clear_error()
    {
        var ex = Assert.Throws<ModuleResolutionException>(() => Resolver.Resolve(["virtio_mmio", "9pnet_virtio"]));
        Assert.Contains("'9pnet_virtio'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compressed_module_is_a_clear_error()
    {
        var ex = Assert.Throws<ModuleResolutionException>(() => Resolver.Resolve(["squashfs"]));
        Assert.Contains("compressed", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dependency_cycle_is_detected()
    {
        var r = ModuleResolver.Parse(["a.ko: b.ko", "b.ko: a.ko"], []);
        Assert.Throws<ModuleResolutionException>(() => r.Resolve(["a"]));
    }

    [Fact]
    public void Default_set_resolves_against_the_installed_cloud_kernel()
    {
        var dir = Directory.EnumerateDirectories("/lib/modules", "*-cloud-amd64").FirstOrDefault();
        Assert.SkipWhen(dir is null, "no cloud kernel modules installed");
        var order = ModuleResolver.Load(dir!).Resolve(ModuleResolver.DefaultModules).ToList();
        Assert.Equal(order.Count, order.Distinct().Count());
        Assert.True(order.IndexOf("kernel/drivers/virtio/virtio_ring.ko") < order.IndexOf("kernel/drivers/virtio/virtio.ko"));
        Assert.True(order.IndexOf("kernel/drivers/virtio/virtio.ko") < order.IndexOf("kernel/drivers/virtio/virtio_mmio.ko"));
        Assert.Contains("kernel/fs/erofs/erofs.ko", order);
        Assert.True(order.IndexOf("kernel/lib/libcrc32c.ko") < order.IndexOf("kernel/fs/erofs/erofs.ko"));
    }
}
