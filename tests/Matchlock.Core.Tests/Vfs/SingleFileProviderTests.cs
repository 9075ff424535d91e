using Matchlock.Core.Vfs;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>A single-file mount: the file's folder with only the file in reach.</summary>
public sealed class SingleFileProviderTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("matchlock-single-");
    private readonly SingleFileProvider _p;

    public SingleFileProviderTests()
    {
        File.WriteAllText(Path.Combine(_folder.FullName, "config.json"), "{\"a\":1}");
        File.WriteAllText(Path.Combine(_folder.FullName, "id_rsa"), "secret sibling");
        Directory.CreateDirectory(Path.Combine(_folder.FullName, "sub"));
        _p = new SingleFileProvider(HostFsProvider.Open(_folder.FullName, readOnly: false), "config.json");
    }

    public void Dispose()
    {
        _p.Dispose();
        _folder.Delete(recursive: true);
    }

    [Fact]
    public void Only_the_file_can_be_looked_up_or_listed()
    {
        Assert.Equal(Errno.ENOENT, _p.Lookup(Root, "id_rsa").Error);
        Assert.Equal(Errno.ENOENT, _p.Lookup(Root, "sub").Error);
        Assert.Equal(["config.json"], _p.List(Root).Select(NameOf));
        var plus = Assert.Single(_p.List(Root, plus: true));
        Assert.NotNull(plus.Entry);
        Assert.Equal("{\"a\":1}", _p.ReadAll(_p.Lookup(Root, "config.json").Value.NodeId));
    }

    [Fact]
    public void The_file_is_served_live_both_ways()
    {
        var node = _p.Lookup(Root, "config.json").Value.NodeId;
        var handle = _p.Open(node, OpenFlags.WriteOnly | OpenFlags.Truncate).Value;
        Assert.Equal(7, _p.Write(node, handle, 0, B("{\"a\":2}")).Value);
        _p.Release(node, handle);
        Assert.Equal("{\"a\":2}", File.ReadAllText(Path.Combine(_folder.FullName, "config.json")));
    }

    [Fact]
    public void Nothing_in_the_folder_itself_can_be_made_removed_renamed_or_changed()
    {
        Assert.Equal(Errno.EPERM, _p.Create(Root, "new").Error);
        Assert.Equal(Errno.EPERM, _p.Mkdir(Root, "d").Error);
        Assert.Equal(Errno.EPERM, _p.Symlink(Root, "l", "/etc/passwd").Error);
        Assert.Equal(Errno.EPERM, _p.Unlink(Root, "config.json"));
        Assert.Equal(Errno.EPERM, _p.Unlink(Root, "id_rsa"));
        Assert.Equal(Errno.EPERM, _p.Rename(Root, "config.json", Root, "x"));
        Assert.Equal(Errno.EPERM, _p.Link(_p.Lookup(Root, "config.json").Value.NodeId, Root, "again").Error);
        Assert.Equal(Errno.EPERM, _p.SetAttr(Root, new VfsSetAttr { Mode = 0x1FF }).Error);
        Assert.Equal(Errno.EPERM, _p.SetXattr(Root, "user.x", B("1"), 0));
        Assert.Equal(["config.json", "id_rsa", "sub"], Directory.GetFileSystemEntries(_folder.FullName).Select(Path.GetFileName).Order());
    }
}
