using Matchlock.Guest.Configuration;
using Matchlock.Guest.Interop;
using Matchlock.Integration.Tests;

namespace Matchlock.Guest.Integration.Tests;

/// <summary>
/// A fresh volume's root takes the owner and mode of the image's mount point, while a used one is
/// left alone. Needs root (chown); no block device.
/// </summary>
public sealed class DiskMountsOwnershipTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("matchlock-disk-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_fresh_volume_root_takes_the_image_directorys_owner_and_mode_and_a_used_one_keeps_its_own()
    {
        HostPrerequisites.Ensure(HostNeeds.Root);

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
