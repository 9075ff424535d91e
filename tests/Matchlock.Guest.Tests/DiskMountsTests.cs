using Matchlock.Guest.Configuration;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The parts of the guest's <c>--disk</c> mounting that need no block device: mount paths are
/// checked before anything is created. That a fresh volume's root takes the owner and mode of the
/// image's mount point needs root (chown): Matchlock.Guest.Integration.Tests/DiskMountsOwnershipTests.
/// </summary>
public sealed class DiskMountsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("matchlock-disk-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_mount_path_that_is_not_normalised_is_refused_naming_the_disk()
    {
        var sysBlock = Path.Combine(_root, "fake-sys-block");
        Directory.CreateDirectory(Path.Combine(sysBlock, "vdz"));
        File.WriteAllText(Path.Combine(sysBlock, "vdz", "serial"), "mldisk0");
        var guestRoot = Path.Combine(_root, "root");
        Directory.CreateDirectory(guestRoot);
        var ex = Assert.Throws<IOException>(() => DiskMounts.MountAll(guestRoot, [new GuestDisk("mldisk0", "/a/../etc", false)], sysBlock));
        Assert.StartsWith("disk mldisk0 at /a/../etc: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("normalised", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(guestRoot, "a")));
    }
}
