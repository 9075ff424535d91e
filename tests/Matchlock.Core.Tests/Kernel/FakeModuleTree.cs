using Matchlock.Core.Kernel;

namespace Matchlock.Core.Tests.Kernel;

/// <summary>
/// A fake kernel module tree (five modules, a modules.dep) and a fake guest binary in a temp
/// directory, for InitramfsBuilder tests in both tiers (the unit tier and, where extracting the
/// archive needs root, Matchlock.Integration.Tests/Kernel).
/// </summary>
internal sealed class FakeModuleTree : IDisposable
{
    public const string Version = "6.1.0-99-cloud-amd64";
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("ml-initramfs-");

    public FakeModuleTree()
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

    public GuestKernel Kernel { get; }

    /// <summary>The fake guest binary ("guest-binary-v1").</summary>
    public string Guest { get; }

    public string Root => _root.FullName;

    public string Cache => Path.Combine(_root.FullName, "cache");

    public void Dispose() => _root.Delete(recursive: true);
}
