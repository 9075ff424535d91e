using Matchlock.Core.Tests.Images;
using Matchlock.Core.Vfs;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>The <c>ro</c> mount type: reads work, every change answers EROFS and the host folder stays as it was.</summary>
public sealed class ReadOnlyHostFsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HostFsProvider _p;

    public ReadOnlyHostFsTests()
    {
        Directory.CreateDirectory(_dir.Combine("d"));
        File.WriteAllText(_dir.Combine("f"), "content");
        _p = HostFsProvider.Open(_dir.Path, readOnly: true);
    }

    public void Dispose()
    {
        _p.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void Reads_lookups_listings_and_xattr_reads_work()
    {
        var f = _p.Lookup(Root, "f").Value.NodeId;
        Assert.Equal("content", _p.ReadAll(f));
        Assert.Equal(["d", "f"], _p.List(Root).Select(NameOf).Order().ToArray());
        Assert.Equal(Errno.ENODATA, _p.GetXattr(f, "user.x").Error);
        Assert.True(_p.ListXattr(f).IsOk);
        Assert.True(_p.StatFs(Root).IsOk);
    }

    [Fact]
    public void Every_mutating_operation_and_every_open_for_writing_is_erofs()
    {
        var f = _p.Lookup(Root, "f").Value.NodeId;
        var d = _p.Lookup(Root, "d").Value.NodeId;
        var readHandle = _p.Open(f, OpenFlags.ReadOnly).Value;

        Assert.Equal(Errno.EROFS, _p.Open(f, OpenFlags.WriteOnly).Error);
        Assert.Equal(Errno.EROFS, _p.Open(f, OpenFlags.ReadWrite).Error);
        Assert.Equal(Errno.EROFS, _p.Open(f, OpenFlags.ReadOnly | OpenFlags.Truncate).Error);
        Assert.Equal(Errno.EROFS, _p.Write(f, readHandle, 0, B("x")).Error);
        Assert.Equal(Errno.EROFS, _p.Fallocate(f, readHandle, 0, 0, 100));
        Assert.Equal(Errno.EROFS, _p.Create(Root, "new").Error);
        Assert.Equal(Errno.EROFS, _p.Create(Root, "f").Error);
        Assert.Equal(Errno.EROFS, _p.Mknod(Root, B("n"), VfsMode.Regular | 0x1A4, 0, Guest).Error);
        Assert.Equal(Errno.EROFS, _p.Mknod(Root, B("n"), VfsMode.Char | 0x1A4, 0, Guest).Error);
        Assert.Equal(Errno.EROFS, _p.Mkdir(Root, "new").Error);
        Assert.Equal(Errno.EROFS, _p.Symlink(Root, "l", "f").Error);
        Assert.Equal(Errno.EROFS, _p.Link(f, Root, "hard").Error);
        Assert.Equal(Errno.EROFS, _p.Unlink(Root, "f"));
        Assert.Equal(Errno.EROFS, _p.Rmdir(Root, "d"));
        Assert.Equal(Errno.EROFS, _p.Rename(Root, "f", d, "f"));
        Assert.Equal(Errno.EROFS, _p.Rename(Root, "f", Root, "d", VfsRenameFlags.Exchange));
        Assert.Equal(Errno.EROFS, _p.SetAttr(f, new VfsSetAttr { Mode = 0x1FF }).Error);
        Assert.Equal(Errno.EROFS, _p.SetAttr(f, new VfsSetAttr { Uid = 0 }).Error);
        Assert.Equal(Errno.EROFS, _p.SetAttr(f, new VfsSetAttr { Size = 0 }).Error);
        Assert.Equal(Errno.EROFS, _p.SetAttr(f, new VfsSetAttr { MtimeNow = true }).Error);
        Assert.Equal(Errno.EROFS, _p.SetXattr(f, "user.x", B("1"), 0));
        Assert.Equal(Errno.EROFS, _p.RemoveXattr(f, "user.x"));
        Assert.Equal(Errno.None, _p.Release(f, readHandle));

        Assert.Equal("content", File.ReadAllText(_dir.Combine("f")));
        Assert.Equal(["d", "f"], Directory.EnumerateFileSystemEntries(_dir.Path).Select(p => Path.GetFileName(p)).Order().ToArray());
    }
}
