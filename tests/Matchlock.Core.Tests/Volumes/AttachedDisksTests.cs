using Matchlock.Core.Sandboxes;
using Matchlock.Core.Tests.Images;
using Matchlock.Core.Volumes;

namespace Matchlock.Core.Tests.Volumes;

/// <summary>
/// What a sandbox does with its <c>--disk</c> list before any VM exists: resolve, check and lock
/// (one writer or many readers per image). Two acquisitions in this process stand for two
/// sandboxes: flock conflicts between descriptors, not processes. No VM.
/// </summary>
public sealed class AttachedDisksTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly VolumeStore _store;

    public AttachedDisksTests()
    {
        _store = new VolumeStore(_dir.Combine("volumes"));
    }

    public void Dispose() => _dir.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private AttachedDisks Attach(params string[] values) =>
        AttachedDisks.Acquire([.. values.Select(v => DiskMount.Parse(v, _dir.Path))], _store.Directory);

    [Fact]
    public async Task A_writable_volume_is_refused_to_a_second_sandbox_until_the_first_releases_it()
    {
        await _store.CreateAsync("data", 16, Ct);
        using (var first = Attach("@data:/mnt/data"))
        {
            Assert.True(first.AnyWritable);
            var vmDisk = Assert.Single(first.VmDisks);
            Assert.Equal((_store.PathOf("data"), "mldisk0", false), (vmDisk.Path, vmDisk.Serial, vmDisk.ReadOnly));

            var writer = Assert.Throws<SandboxStartException>(() => Attach("@data:/other"));
            Assert.Contains("volume \"data\" is in use by another sandbox", writer.Message, StringComparison.Ordinal);
            var reader = Assert.Throws<SandboxStartException>(() => Attach("@data:/other:ro"));
            Assert.Contains("in use by another sandbox that writes it", reader.Message, StringComparison.Ordinal);
            Assert.Contains("volume \"data\" is in use", Assert.Throws<VolumeException>(() => _store.Remove("data")).Message, StringComparison.Ordinal);
        }

        using var again = Attach("@data:/mnt/data");
    }

    [Fact]
    public async Task Read_only_attachments_share_an_image_and_keep_writers_out()
    {
        await _store.CreateAsync("data", 16, Ct);
        using var first = Attach("@data:/a:ro");
        using var second = Attach("@data:/b:ro");
        Assert.False(first.AnyWritable);
        Assert.True(Assert.Single(first.VmDisks).ReadOnly);
        Assert.Throws<SandboxStartException>(() => Attach("@data:/c"));
    }

    [Fact]
    public async Task A_missing_volume_names_volume_create_and_nothing_stays_locked()
    {
        await _store.CreateAsync("data", 16, Ct);
        var missing = Assert.Throws<InvalidInputException>(() => Attach("@data:/a", "@nope:/b"));
        Assert.Contains("named volume not found: \"nope\"", missing.Message, StringComparison.Ordinal);
        Assert.Contains("matchlock volume create nope", missing.Message, StringComparison.Ordinal);

        // The first disk's lock was released with the failure.
        using var attached = Attach("@data:/a");
    }

    [Fact]
    public async Task A_host_file_must_be_an_ext4_image_and_one_image_is_attached_once()
    {
        var junk = _dir.Combine("junk.img");
        await File.WriteAllBytesAsync(junk, new byte[8192], Ct);
        var notExt4 = Assert.Throws<InvalidInputException>(() => Attach("junk.img:/j"));
        Assert.Contains("not an ext4 filesystem image", notExt4.Message, StringComparison.Ordinal);

        // A library caller's spec skips Parse's checks; the attach itself never takes a device.
        var device = Assert.Throws<InvalidInputException>(() =>
            AttachedDisks.Acquire([new DiskMount { HostPath = "/dev/zero", GuestPath = "/z", ReadOnly = true }], _store.Directory));
        Assert.Contains("not a regular file", device.Message, StringComparison.Ordinal);

        var volume = await _store.CreateAsync("data", 16, Ct);
        var twice = Assert.Throws<InvalidInputException>(() => Attach("@data:/a", $"{volume.Path}:/b"));
        Assert.Contains("are the same image", twice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_volume_a_killed_writer_left_is_refused_read_only_with_the_remedy_but_attaches_writable()
    {
        var volume = await _store.CreateAsync("data", 16, Ct);
        // What a writer's kernel leaves when it dies mounted: EXT3_FEATURE_INCOMPAT_RECOVER (0x4)
        // in s_feature_incompat (superblock at 1024, field at 0x60).
        using (var image = File.OpenHandle(volume.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            var field = new byte[4];
            RandomAccess.Read(image, field, 1024 + 0x60);
            field[0] |= 0x4;
            RandomAccess.Write(image, field, 1024 + 0x60);
        }

        var refused = Assert.Throws<SandboxStartException>(() => Attach("@data:/d:ro"));
        Assert.Contains("was not unmounted cleanly", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--disk @data:/mnt", refused.Message, StringComparison.Ordinal);

        // Writable, the guest kernel replays the journal on mount.
        using var writable = Attach("@data:/d");
    }

    [Fact]
    public async Task Guest_mounts_list_parents_before_children_and_errors_name_the_users_disk()
    {
        await _store.CreateAsync("a", 16, Ct);
        await _store.CreateAsync("b", 16, Ct);
        using var disks = Attach("@b:/mnt/a/b:ro", "@a:/mnt/a");
        Assert.Equal(
            [new("mldisk1", "/mnt/a", false), new("mldisk0", "/mnt/a/b", true)],
            disks.GuestMounts);
        Assert.Equal(
            "configure: disks: --disk @b:/mnt/a/b:ro: mount ext4 /dev/vdc on /mnt/a/b: Invalid argument",
            disks.Describe("configure: disks: disk mldisk0 at /mnt/a/b: mount ext4 /dev/vdc on /mnt/a/b: Invalid argument"));
    }
}
