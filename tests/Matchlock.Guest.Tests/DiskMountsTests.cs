using System.Diagnostics;
using Matchlock.Guest.Configuration;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The part of the guest's <c>--disk</c> mounting that needs no block device: a fresh volume's
/// root takes the owner and mode of the image's mount point, a used one is left alone. Needs
/// root (chown); skipped otherwise.
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

    private string MakeVolumeRoot(string name)
    {
        var root = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.Combine(root, "lost+found"));
        File.SetUnixFileMode(root, (UnixFileMode)0x1ED); // 0755, as mkfs.ext4 leaves it
        return root;
    }

    private static string Stat(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("stat", ["-c", "%u:%g %a", path]) { RedirectStandardOutput = true })!;
        var output = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return output;
    }
}
