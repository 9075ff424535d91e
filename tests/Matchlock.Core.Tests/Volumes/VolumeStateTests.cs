using Matchlock.Core.Sandboxes;
using Matchlock.Core.State;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Core.Tests.Volumes;

/// <summary>
/// A sandbox records its <c>--disk</c> images in state.db (so <c>inspect</c> shows them), and
/// releasing or removing the VM (<c>gc</c>, <c>rm</c>, <c>prune</c>) must never delete them: they
/// outlive every VM. No VM.
/// </summary>
public sealed class VolumeStateTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Gc_and_rm_of_a_dead_vm_delete_its_own_disk_but_never_an_attached_one()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = VmId.New();
        var vmDir = _dir.Combine("vms", id);
        Directory.CreateDirectory(vmDir);
        var upper = Path.Combine(vmDir, "upper.ext4");
        var volume = _dir.Combine("volumes", "data.ext4");
        Directory.CreateDirectory(Path.GetDirectoryName(volume)!);
        await File.WriteAllBytesAsync(upper, [1], ct);
        await File.WriteAllBytesAsync(volume, [2], ct);

        using var store = VmStateStore.Open(_dir.Combine("state.db"));
        store.Register(new VmRegistration(id, "busybox", DateTimeOffset.UtcNow, Environment.ProcessId, "1", id, 1, 512, vmDir));
        store.AddResource(id, VmResourceKind.Disk, upper);
        store.AddResource(id, VmResourceKind.AttachedDisk, volume);
        Assert.Contains(new VmResource(VmResourceKind.AttachedDisk, volume), store.Resources(id));
        Assert.Equal("attached_disk", VmStateStore.ResourceKindName(VmResourceKind.AttachedDisk));

        // gc first (releases resources, keeps the record), then rm; owner start time "1": crashed.
        var collected = await VmReconciler.CollectAsync(store, id, forceRunning: false, ct);
        Assert.True(collected.Removed, string.Join("; ", collected.Leftovers));
        Assert.False(File.Exists(upper));
        Assert.True(File.Exists(volume), "gc deleted an attached volume");

        var removal = await VmReconciler.RemoveAsync(store, id, ct);
        Assert.True(removal.Removed, string.Join("; ", removal.Leftovers));
        Assert.True(File.Exists(volume), "rm deleted an attached volume");
        Assert.Null(store.Get(id));
    }
}
