using Matchlock.Core.Tests.Images;
using Matchlock.Core.Vfs;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>
/// Escape attempts against a host_fs mount: every way a guest could name, follow, link or move
/// something outside the mount root. Each test keeps a folder beside the mount ("outside") with a
/// file the guest must never read or change. No VM, no root.
/// </summary>
public sealed class HostFsConfinementTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HostFsProvider _p;

    public HostFsConfinementTests()
    {
        Directory.CreateDirectory(_dir.Combine("mount"));
        Directory.CreateDirectory(_dir.Combine("outside"));
        File.WriteAllText(_dir.Combine("outside", "secret"), "host secret");
        _p = HostFsProvider.Open(_dir.Combine("mount"), readOnly: false);
    }

    public void Dispose()
    {
        _p.Dispose();
        _dir.Dispose();
    }

    private string[] Outside => [.. Directory.EnumerateFileSystemEntries(_dir.Combine("outside")).Select(Path.GetFileName)!];

    private void AssertOutsideUntouched()
    {
        Assert.Equal(["secret"], Outside);
        Assert.Equal("host secret", File.ReadAllText(_dir.Combine("outside", "secret")));
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../outside")]
    [InlineData("../outside/secret")]
    [InlineData("/etc/passwd")]
    [InlineData("secret\0")]
    public void Names_that_climb_or_carry_a_path_are_refused_before_any_syscall(string name)
    {
        Assert.Equal(Errno.EINVAL, _p.Lookup(Root, name).Error);
        Assert.Equal(Errno.EINVAL, _p.Create(Root, name).Error);
        Assert.Equal(Errno.EINVAL, _p.Unlink(Root, name));
        AssertOutsideUntouched();
    }

    [Fact]
    public void A_4_KiB_name_is_refused_as_too_long()
    {
        var name = string.Concat(Enumerable.Repeat("../", 1365)) + "x";
        Assert.Equal(Errno.ENAMETOOLONG, _p.Lookup(Root, name).Error);
        Assert.Equal(Errno.ENAMETOOLONG, _p.Mkdir(Root, name).Error);
    }

    [Fact]
    public void A_symlink_pointing_outside_is_looked_up_as_itself_and_never_followed()
    {
        File.CreateSymbolicLink(_dir.Combine("mount", "escape"), _dir.Combine("outside"));
        File.CreateSymbolicLink(_dir.Combine("mount", "escape-file"), _dir.Combine("outside", "secret"));

        var link = _p.Lookup(Root, "escape").Value;
        Assert.Equal(VfsMode.Symlink, link.Attr.FileType);
        Assert.Equal(_dir.Combine("outside"), System.Text.Encoding.UTF8.GetString(_p.ReadLink(link.NodeId).Value));
        Assert.Equal(Errno.ENOTDIR, _p.Lookup(link.NodeId, "secret").Error);
        Assert.Equal(Errno.ENOTDIR, _p.OpenDir(link.NodeId).Error);
        Assert.Equal(Errno.ENOTDIR, _p.Create(link.NodeId, "planted").Error);
        Assert.Equal(Errno.ENOTDIR, _p.Rename(Root, "escape-file", link.NodeId, "moved"));

        var fileLink = _p.Lookup(Root, "escape-file").Value;
        Assert.Equal(Errno.ELOOP, _p.Open(fileLink.NodeId, OpenFlags.ReadOnly).Error);
        Assert.Equal(Errno.ELOOP, _p.Open(fileLink.NodeId, OpenFlags.WriteOnly | OpenFlags.Truncate).Error);
        Assert.Equal(Errno.EINVAL, _p.SetAttr(fileLink.NodeId, new VfsSetAttr { Size = 0 }).Error);
        Assert.Equal(Errno.EOPNOTSUPP, _p.SetAttr(fileLink.NodeId, new VfsSetAttr { Mode = 0x1FF }).Error);
        Assert.Equal(Errno.ENODATA, _p.GetXattr(fileLink.NodeId, "user.x").Error);
        Assert.Equal(Errno.ELOOP, _p.Create(Root, "escape-file").Error);
        AssertOutsideUntouched();
    }

    [Fact]
    public void Creating_over_a_symlink_name_never_writes_through_it()
    {
        File.CreateSymbolicLink(_dir.Combine("mount", "escape-file"), _dir.Combine("outside", "secret"));
        Assert.Equal(Errno.ELOOP, _p.Create(Root, "escape-file", flags: OpenFlags.WriteOnly | OpenFlags.Truncate).Error);
        Assert.Equal(Errno.EEXIST, _p.Create(Root, "escape-file", flags: OpenFlags.WriteOnly | OpenFlags.Exclusive).Error);
        Assert.Equal(Errno.EEXIST, _p.Mkdir(Root, "escape-file").Error);
        AssertOutsideUntouched();
    }

    [Fact]
    public void A_directory_swapped_for_a_symlink_between_operations_keeps_its_node_on_the_original()
    {
        Directory.CreateDirectory(_dir.Combine("mount", "work"));
        var work = _p.Lookup(Root, "work").Value.NodeId;

        // The host (or a racing guest process) moves the directory away and puts a symlink to
        // the outside folder in its place: the node still holds the original directory.
        Directory.Move(_dir.Combine("mount", "work"), _dir.Combine("mount", "moved"));
        File.CreateSymbolicLink(_dir.Combine("mount", "work"), _dir.Combine("outside"));

        Assert.Equal(Errno.ENOENT, _p.Lookup(work, "secret").Error);
        _p.WriteFile(work, "planted", "from the guest");
        Assert.Equal(Errno.ENOENT, _p.Unlink(work, "secret"));
        Assert.Equal(Errno.ENOENT, _p.Rename(work, "secret", Root, "stolen"));
        Assert.True(File.Exists(_dir.Combine("mount", "moved", "planted")));
        Assert.DoesNotContain("secret", _p.List(work).Select(NameOf));

        // A fresh lookup of the name finds the symlink itself.
        Assert.Equal(VfsMode.Symlink, _p.Lookup(Root, "work").Value.Attr.FileType);
        AssertOutsideUntouched();
    }

    [Fact]
    public void A_hard_link_can_only_be_made_to_nodes_of_this_mount()
    {
        // The only source a guest can name is a node id: ids it was never given find nothing.
        foreach (var forged in new ulong[] { 0, 2, 999, ulong.MaxValue })
        {
            Assert.Equal(Errno.ENOENT, _p.Link(forged, Root, "stolen").Error);
        }

        using var other = HostFsProvider.Open(_dir.Combine("outside"), readOnly: false);
        var secret = other.Lookup(Root, "secret").Value.NodeId;
        Assert.True(_p.Link(secret, Root, "stolen").Error is Errno.ENOENT or Errno.EPERM);
        Assert.False(File.Exists(_dir.Combine("mount", "stolen")));
        AssertOutsideUntouched();
    }

    [Fact]
    public void Rename_cannot_move_anything_out_of_the_root()
    {
        _p.WriteFile(Root, "mine", "guest data");
        Assert.Equal(Errno.EINVAL, _p.Rename(Root, "mine", Root, "../outside/mine"));
        Assert.Equal(Errno.ENOENT, _p.Rename(Root, "mine", 4242, "mine"));
        Assert.Equal(Errno.EINVAL, _p.Rename(Root, "../outside/secret", Root, "here"));
        AssertOutsideUntouched();
        Assert.True(File.Exists(_dir.Combine("mount", "mine")));
    }

    [Fact]
    public void The_host_folder_deleted_while_mounted_gives_enoent_not_a_crash()
    {
        var sub = _p.Mkdir(Root, "sub").Value.NodeId;
        _p.WriteFile(sub, "f", "x");
        Directory.Delete(_dir.Combine("mount"), recursive: true);

        Assert.Equal(Errno.ENOENT, _p.Lookup(Root, "sub").Error);
        Assert.Equal(Errno.ENOENT, _p.Create(Root, "new").Error);
        Assert.Equal(Errno.ENOENT, _p.Mkdir(sub, "new").Error);
        Assert.Equal(Errno.ENOENT, _p.Lookup(sub, "f").Error);
        Assert.True(_p.GetAttr(Root).IsOk);
        var handle = _p.OpenDir(Root).Value;
        Assert.Equal(Errno.ENOENT, _p.ReadDir(Root, handle, 0, true, (in VfsDirEntry _) => true));
        Assert.Equal(Errno.None, _p.ReleaseDir(Root, handle));
        Assert.True(_p.StatFs(Root).IsOk);
        Assert.False(Directory.Exists(_dir.Combine("mount")));
        AssertOutsideUntouched();
    }
}
