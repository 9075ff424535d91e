using Matchlock.Core.Vfs;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>The provider contract on the in-memory tree, plus what only it does: FIFOs and sockets, its capacity.</summary>
public sealed class MemoryProviderTests : ProviderContractTests
{
    private protected override IVfsProvider CreateProvider() => new MemoryProvider(capacityBytes: 1 << 20);

    [Fact]
    public void Fifos_and_sockets_live_in_memory_since_the_guests_kernel_serves_them()
    {
        Assert.Equal(VfsMode.Fifo, P.Mknod(Root, B("pipe"), VfsMode.Fifo | 0x1A4, 0, Guest).Value.Attr.FileType);
        Assert.Equal(VfsMode.Socket, P.Mknod(Root, B("sock"), VfsMode.Socket | 0x1A4, 0, Guest).Value.Attr.FileType);
        Assert.Equal(Errno.EACCES, P.Open(P.Lookup(Root, "pipe").Value.NodeId, OpenFlags.ReadOnly).Error);
    }

    [Fact]
    public void Writes_past_the_capacity_get_enospc_and_deleting_gives_the_space_back()
    {
        var memory = (MemoryProvider)P;
        var created = P.Create(Root, "big").Value;
        var node = created.Entry.NodeId;
        Assert.Equal(1 << 20, P.Write(node, created.Handle, 0, new byte[1 << 20]).Value);
        Assert.Equal(Errno.ENOSPC, P.Write(node, created.Handle, 1 << 20, new byte[1]).Error);
        Assert.Equal(Errno.ENOSPC, P.SetAttr(node, new VfsSetAttr { Size = 2 << 20 }).Error);

        Assert.Equal(Errno.None, P.Unlink(Root, "big"));
        Assert.Equal(1L << 20, memory.UsedBytes);
        P.Release(node, created.Handle);
        Assert.Equal(0L, memory.UsedBytes);
        Assert.True(P.WriteFile(Root, "again", new string('x', 1000)) > 0);
    }

    [Fact]
    public void A_read_only_memory_tree_refuses_every_change()
    {
        using var ro = new MemoryProvider(readOnly: true);
        Assert.Equal(Errno.EROFS, ro.Mkdir(Root, "d").Error);
        Assert.Equal(Errno.EROFS, ro.Create(Root, "f").Error);
        Assert.Equal(Errno.EROFS, ro.SetAttr(Root, new VfsSetAttr { Mode = 0x1FF }).Error);
        Assert.Equal(Errno.EROFS, ro.SetXattr(Root, "user.x", B("1"), 0));
        Assert.True(ro.StatFs(Root).IsOk);
    }
}
