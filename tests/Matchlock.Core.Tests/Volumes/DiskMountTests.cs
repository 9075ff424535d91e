using Matchlock.Core.Sandboxes;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Core.Tests.Volumes;

/// <summary><c>--disk</c> values: syntax, host-file checks, guest mount paths, the per-sandbox list. No VM.</summary>
public sealed class DiskMountTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("@data:/mnt/data", "data", "/mnt/data", false)]
    [InlineData("@data:/mnt/data:ro", "data", "/mnt/data", true)]
    [InlineData("@data:/mnt/data:rw", "data", "/mnt/data", false)]
    [InlineData("@my_vol.1-x:/mnt//data/./:ro", "my_vol.1-x", "/mnt/data", true)]
    public void A_volume_disk_parses_into_name_mount_point_and_mode(string value, string name, string guestPath, bool readOnly)
    {
        var disk = DiskMount.Parse(value);
        Assert.Equal(name, disk.VolumeName);
        Assert.Null(disk.HostPath);
        Assert.Equal(guestPath, disk.GuestPath);
        Assert.Equal(readOnly, disk.ReadOnly);
        Assert.Equal("@" + name, disk.Source);
    }

    [Fact]
    public void A_relative_host_path_is_resolved_against_the_given_directory()
    {
        File.WriteAllBytes(_dir.Combine("disk.ext4"), []);
        var disk = DiskMount.Parse("disk.ext4:/mnt:ro", _dir.Path);
        Assert.Equal(_dir.Combine("disk.ext4"), disk.HostPath);
        Assert.Null(disk.VolumeName);
        Assert.Equal("/mnt", disk.GuestPath);
        Assert.True(disk.ReadOnly);
        Assert.Equal($"{_dir.Combine("disk.ext4")}:/mnt:ro", disk.ToString());
    }

    [Fact]
    public void A_host_path_may_contain_colons()
    {
        var path = _dir.Combine("a:b.ext4");
        File.WriteAllBytes(path, []);
        var disk = DiskMount.Parse($"{path}:/data");
        Assert.Equal(path, disk.HostPath);
        Assert.Equal("/data", disk.GuestPath);
        Assert.False(disk.ReadOnly);
    }

    [Fact]
    public void A_missing_host_file_or_a_directory_is_refused_with_its_path()
    {
        var missing = Assert.Throws<ArgumentException>(() => DiskMount.Parse("nope.ext4:/mnt", _dir.Path));
        Assert.Contains(_dir.Combine("nope.ext4") + " does not exist", missing.Message, StringComparison.Ordinal);
        Assert.Contains("@NAME", missing.Message, StringComparison.Ordinal);

        var directory = Assert.Throws<ArgumentException>(() => DiskMount.Parse($"{_dir.Path}:/mnt"));
        Assert.Contains("is a directory", directory.Message, StringComparison.Ordinal);

        var device = Assert.Throws<ArgumentException>(() => DiskMount.Parse("/dev/null:/mnt"));
        Assert.Contains("not a regular file", device.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("@data:mnt", "must be absolute")]
    [InlineData("@data:/", "cannot be mounted at /")]
    [InlineData("@data://./", "cannot be mounted at /")]
    [InlineData("@data:/a/../b", "must not contain '..'")]
    [InlineData("@data:/..", "must not contain '..'")]
    [InlineData("@data:/proc", "inside /proc")]
    [InlineData("@data:/sys/fs/x", "inside /sys")]
    [InlineData("@data:/dev/shm:ro", "inside /dev")]
    [InlineData("@data", "no guest mount path")]
    [InlineData("@data:", "no guest mount path")]
    [InlineData(":/mnt", "no source")]
    [InlineData("@:/mnt", "no source")]
    [InlineData("@data:/mnt:rx", "unknown option \"rx\"")]
    [InlineData("@data:ro", "must be absolute")]
    [InlineData("@-bad:/mnt", "invalid volume name \"-bad\"")]
    [InlineData("@a b:/mnt", "invalid volume name")]
    public void Bad_values_are_refused_saying_what_is_wrong(string value, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(() => DiskMount.Parse(value));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains(value, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Paths_that_only_look_reserved_are_fine()
    {
        Assert.Equal("/procedures", DiskMount.Parse("@d:/procedures").GuestPath);
        Assert.Equal("/mnt/dev", DiskMount.Parse("@d:/mnt/dev").GuestPath);
    }

    [Fact]
    public void A_sandbox_refuses_a_mount_point_or_an_image_used_twice_and_too_many_disks()
    {
        var twiceAt = Assert.Throws<ArgumentException>(() => DiskMount.ValidateAll([DiskMount.Parse("@a:/mnt"), DiskMount.Parse("@b:/mnt/")]));
        Assert.Contains("two disks are mounted at /mnt", twiceAt.Message, StringComparison.Ordinal);

        var twiceSource = Assert.Throws<ArgumentException>(() => DiskMount.ValidateAll([DiskMount.Parse("@a:/x"), DiskMount.Parse("@a:/y:ro")]));
        Assert.Contains("@a is attached twice", twiceSource.Message, StringComparison.Ordinal);

        var many = Enumerable.Range(0, DiskMount.MaxDisks + 1).Select(i => DiskMount.Parse($"@v{i}:/m{i}")).ToList();
        Assert.Contains($"at most {DiskMount.MaxDisks}", Assert.Throws<ArgumentException>(() => DiskMount.ValidateAll(many)).Message, StringComparison.Ordinal);

        DiskMount.ValidateAll([.. many.Take(DiskMount.MaxDisks)]);
        DiskMount.ValidateAll([]);
    }

    [Fact]
    public void A_library_caller_gets_the_same_checks_through_the_sandbox_spec()
    {
        var spec = new SandboxSpec { Image = "busybox", Disks = [new DiskMount { VolumeName = "v", GuestPath = "/a/../b" }] };
        Assert.Throws<ArgumentException>(spec.Validate);

        var both = new SandboxSpec { Image = "busybox", Disks = [new DiskMount { VolumeName = "v", HostPath = "/x.ext4", GuestPath = "/b" }] };
        Assert.Contains("exactly one", Assert.Throws<ArgumentException>(both.Validate).Message, StringComparison.Ordinal);

        var relative = new SandboxSpec { Image = "busybox", Disks = [new DiskMount { HostPath = "x.ext4", GuestPath = "/b" }] };
        Assert.Contains("must be absolute", Assert.Throws<ArgumentException>(relative.Validate).Message, StringComparison.Ordinal);

        var unnormalised = new SandboxSpec { Image = "busybox", Disks = [new DiskMount { VolumeName = "v", GuestPath = "/b/" }] };
        Assert.Contains("normalised", Assert.Throws<ArgumentException>(unnormalised.Validate).Message, StringComparison.Ordinal);
    }
}
