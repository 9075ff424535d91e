using Matchlock.Core.Vfs;

namespace Matchlock.Core.Tests.Vfs;

/// <summary><c>-v HOST:GUEST[:TYPE]</c>: parsed and checked before anything is created.</summary>
public sealed class VfsMountSpecTests : IDisposable
{
    private readonly DirectoryInfo _host = Directory.CreateTempSubdirectory("matchlock-vmount-");

    public void Dispose() => _host.Delete(recursive: true);

    [Fact]
    public void Type_defaults_to_overlay_and_a_relative_guest_path_joins_the_workspace()
    {
        var spec = VfsMountSpec.Parse($"{_host.FullName}:repo");
        Assert.Equal(new VfsMountSpec("/workspace/repo", VfsMountType.Overlay, _host.FullName), spec);
        Assert.Equal(VfsMountType.HostFs, VfsMountSpec.Parse($"{_host.FullName}:/srv/x/:host_fs").Type);
        Assert.Equal("/srv/x", VfsMountSpec.Parse($"{_host.FullName}:/srv/./x/:ro").GuestPath);
        Assert.Equal("/code/repo", VfsMountSpec.Parse($"{_host.Name}:repo:ro", "/code", _host.Parent!.FullName).GuestPath);
    }

    [Theory]
    [InlineData("{0}:/proc/x", "cannot be a mount point")]
    [InlineData("{0}:/dev", "cannot be a mount point")]
    [InlineData("{0}:/", "cannot be a mount point")]
    [InlineData("{0}:/a/../etc", "\"..\"")]
    [InlineData("{0}:/a:rw", "unknown mount type")]
    [InlineData("{0}", "expected HOST_PATH:GUEST_PATH")]
    [InlineData("/nonexistent-matchlock-folder:/a", "does not exist")]
    public void Bad_values_say_what_is_wrong(string template, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => VfsMountSpec.Parse(string.Format(System.Globalization.CultureInfo.InvariantCulture, template, _host.FullName)));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_is_a_single_file_mount_and_two_mounts_at_one_path_are_refused()
    {
        var file = Path.Combine(_host.FullName, "f");
        File.WriteAllText(file, "x");
        Assert.Equal(new VfsMountSpec("/etc/f", VfsMountType.ReadOnly, file) { IsFile = true }, VfsMountSpec.Parse($"{file}:/etc/f:ro"));
        Assert.False(VfsMountSpec.Parse($"{_host.FullName}:/d").IsFile);
        var twice = Assert.Throws<ArgumentException>(() => VfsMountSpec.CheckDistinct([VfsMountSpec.Parse($"{_host.FullName}:a"), VfsMountSpec.Parse($"{_host.FullName}:/workspace/a:ro")]));
        Assert.Contains("/workspace/a", twice.Message, StringComparison.Ordinal);
    }
}
