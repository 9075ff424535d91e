using Matchlock.Guest.Configuration;
using Matchlock.Guest.Interop;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The parts of the guest's <c>--disk</c> mounting that need no block device: mount paths are
/// checked before anything is created, and a fresh volume's root takes the owner and mode of the
/// image's mount point while a used one is left alone (that one needs root for chown).
/// </summary>
public sealed class DiskMountsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("matchlock-disk-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_fresh_volume_root_takes_the_image_directorys_owner_and_mode_and_a_used_one_keeps_its_own()
    {
        if (!ProcessTestSupport.IsRoot)
        {
            Assert.Skip("needs root (chown)");
        }

        var fresh = MakeVolumeRoot("fresh");
        DiskMounts.AdoptIfFresh(fresh, (1234, 5678, 0x3FF /* 01777 */));
        Assert.Equal("1234:5678 1777", Stat(fresh));

        var used = MakeVolumeRoot("used");
        File.WriteAllText(Path.Combine(used, "data"), "x");
        DiskMounts.AdoptIfFresh(used, (1234, 5678, 0x3FF));
        Assert.Equal("0:0 755", Stat(used));

        var changed = MakeVolumeRoot("changed");
        File.SetUnixFileMode(changed, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        DiskMounts.AdoptIfFresh(changed, (1234, 5678, 0x3FF));
        Assert.Equal("0:0 700", Stat(changed));
    }

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

    private string MakeVolumeRoot(string name)
    {
        var root = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.Combine(root, "lost+found"));
        File.SetUnixFileMode(root, (UnixFileMode)0x1ED); // 0755, as mkfs.ext4 leaves it
        return root;
    }

    // libc stat, not stat(1): a child process here would be reaped by the guest's Reaper, which
    // this test process also runs, and .NET aborts when its own child is gone from under it.
    private static unsafe string Stat(string path)
    {
        StatBuffer buffer;
        Assert.Equal(0, Libc.stat(path, &buffer));
        return $"{buffer.Uid}:{buffer.Gid} {Convert.ToString(buffer.Mode & 0xFFF, 8)}";
    }
}
