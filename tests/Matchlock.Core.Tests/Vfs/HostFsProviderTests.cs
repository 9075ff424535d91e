using System.Text;
using Matchlock.Core.Interop;
using Matchlock.Core.Tests.Images;
using Matchlock.Core.Vfs;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>
/// The provider contract on a live host folder, and what is particular to the host: inode numbers
/// are the host's, the host file never gets setuid/setgid or the guest's owner, the ownership
/// xattr is the server's own. Tests that chown need root (CI runs as root) and are skipped otherwise.
/// </summary>
public sealed class HostFsProviderTests : ProviderContractTests
{
    private readonly TempDir _dir = new();

    public override void Dispose()
    {
        base.Dispose();
        _dir.Dispose();
    }

    private protected override IVfsProvider CreateProvider() => HostFsProvider.Open(_dir.Path, readOnly: false);

    internal static ulong HostIno(string path)
    {
        using var fd = VfsNative.OpenAt2(path, VfsNative.OPath | VfsNative.ONoFollow | VfsNative.OCloExec, 0);
        Assert.False(fd.IsInvalid);
        Assert.Equal(0, VfsNative.StatxNode(fd, out var st));
        return st.Ino;
    }

    [Fact]
    public void Readdirplus_in_small_chunks_continues_its_batch_and_a_seek_back_lists_again()
    {
        var names = Enumerable.Range(0, 500).Select(i => $"n{i:D3}").ToHashSet();
        foreach (var name in names)
        {
            File.WriteAllText(_dir.Combine(name), "");
        }

        var handle = P.OpenDir(Root).Value;
        List<string> Chunks(ulong from, int max, List<ulong> offsets)
        {
            List<string> seen = [];
            var offset = from;
            while (seen.Count < max)
            {
                var taken = 0;
                Assert.Equal(Errno.None, P.ReadDir(Root, handle, offset, true, (in VfsDirEntry e) =>
                {
                    if (taken == 7)
                    {
                        return false; // a full reply: this entry comes first next time
                    }

                    taken++;
                    seen.Add(NameOf(e));
                    offsets.Add(e.Offset);
                    offset = e.Offset;
                    if (e.Entry is { } entry)
                    {
                        P.Forget(entry.NodeId, 1);
                    }

                    return true;
                }));
                if (taken == 0)
                {
                    break;
                }
            }

            return seen;
        }

        List<ulong> offsets = [];
        var first = Chunks(0, 100, offsets); // part of the way, then seek back to an earlier entry
        var again = Chunks(offsets[49], int.MaxValue, []);
        Assert.Equal(first[50..], again[..(first.Count - 50)]);
        var all = Chunks(0, int.MaxValue, []);
        Assert.Equal(502, all.Count);
        Assert.Equal(names, all.Where(n => n is not "." and not "..").ToHashSet());
        Assert.Equal(Errno.None, P.ReleaseDir(Root, handle));
    }

    [Fact]
    public void Inode_numbers_are_the_hosts_so_getcwd_in_the_guest_matches_stat()
    {
        Directory.CreateDirectory(_dir.Combine("src", "lib"));
        File.WriteAllText(_dir.Combine("src", "main.c"), "int main;");
        var src = P.Lookup(Root, "src").Value;
        Assert.Equal(HostIno(_dir.Combine("src")), src.Attr.Ino);
        Assert.Equal(HostIno(_dir.Path), P.GetAttr(Root).Value.Ino);
        var listed = P.List(src.NodeId).ToDictionary(NameOf, e => e.Ino);
        Assert.Equal(HostIno(_dir.Combine("src", "lib")), listed["lib"]);
        Assert.Equal(HostIno(_dir.Combine("src", "main.c")), listed["main.c"]);
    }

    [Fact]
    public void Changes_made_through_the_provider_are_on_the_host_at_once_and_host_changes_show()
    {
        var dir = P.Mkdir(Root, "out").Value.NodeId;
        P.WriteFile(dir, "result.txt", "42");
        Assert.Equal("42", File.ReadAllText(_dir.Combine("out", "result.txt")));

        File.WriteAllText(_dir.Combine("out", "result.txt"), "43 and more");
        var node = P.Lookup(dir, "result.txt").Value;
        Assert.Equal(11UL, node.Attr.Size);
        Assert.Equal("43 and more", P.ReadAll(node.NodeId));
    }

    [Fact]
    public void Setuid_and_setgid_reach_the_guests_view_but_never_the_host_file()
    {
        var node = P.Create(Root, "tool", VfsMode.SetUid | VfsMode.SetGid | 0x1ED).Value.Entry.NodeId;
        Assert.Equal(VfsMode.Regular | VfsMode.SetUid | VfsMode.SetGid | 0x1EDu, P.GetAttr(node).Value.Mode);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(_dir.Combine("tool")));

        var plain = P.WriteFile(Root, "plain", "x");
        P.SetAttr(plain, new VfsSetAttr { Mode = VfsMode.SetUid | 0x1C0 });
        Assert.Equal(VfsMode.Regular | VfsMode.SetUid | 0x1C0u, P.GetAttr(plain).Value.Mode);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir.Combine("plain")));
    }

    [Fact]
    public void The_ownership_record_is_uid_gid_octal_mode_and_the_guest_can_neither_see_nor_touch_it()
    {
        var node = P.Create(Root, "f", 0x1A4).Value.Entry.NodeId;
        Assert.Equal(0, VfsNative.GetXattrNode(HostNodeFd(), OwnershipXattr.Name, out var raw));
        Assert.Equal("1000:1000:644", Encoding.ASCII.GetString(raw));

        Assert.Equal(Errno.ENODATA, P.GetXattr(node, OwnershipXattr.Name).Error);
        Assert.Equal(Errno.EPERM, P.SetXattr(node, OwnershipXattr.Name, B("0:0:4755"), 0));
        Assert.Equal(Errno.EPERM, P.RemoveXattr(node, OwnershipXattr.Name));
        Assert.DoesNotContain(OwnershipXattr.Name, P.ListXattr(node).Value);

        Microsoft.Win32.SafeHandles.SafeFileHandle HostNodeFd() =>
            VfsNative.OpenAt2(_dir.Combine("f"), VfsNative.OPath | VfsNative.ONoFollow | VfsNative.OCloExec, 0);
    }

    [Fact]
    public void Files_the_guest_did_not_create_show_the_hosts_owner_until_the_guest_chowns_them()
    {
        File.WriteAllText(_dir.Combine("host.txt"), "from the host");
        var hostOwner = P.GetAttr(Root).Value;
        var node = P.Lookup(Root, "host.txt").Value;
        Assert.Equal((hostOwner.Uid, hostOwner.Gid), (node.Attr.Uid, node.Attr.Gid));

        var attr = P.SetAttr(node.NodeId, new VfsSetAttr { Uid = 33, Gid = 33 }).Value;
        Assert.Equal((33u, 33u), (attr.Uid, attr.Gid));
        Assert.Equal(node.Attr.Mode, attr.Mode);
    }

    [Fact]
    public void Files_the_guest_creates_belong_on_the_host_to_the_folders_owner()
    {
        Assert.SkipUnless(LinuxNative.EffectiveUserId == 0, "needs root: chowns the folder to another user");
        LinuxNative.LChown(_dir.Path, 4321, 4322);
        var file = P.Create(Root, "made-by-guest").Value.Entry;
        var dir = P.Mkdir(Root, "dir-by-guest").Value;
        var link = P.Symlink(Root, "link-by-guest", "made-by-guest").Value;

        foreach (var name in new[] { "made-by-guest", "dir-by-guest", "link-by-guest" })
        {
            using var fd = VfsNative.OpenAt2(_dir.Combine(name), VfsNative.OPath | VfsNative.ONoFollow | VfsNative.OCloExec, 0);
            Assert.Equal(0, VfsNative.StatxNode(fd, out var st));
            Assert.Equal((4321u, 4322u), (st.Uid, st.Gid));
        }

        Assert.Equal((1000u, 1000u), (file.Attr.Uid, file.Attr.Gid));
        Assert.Equal((1000u, 1000u), (dir.Attr.Uid, dir.Attr.Gid));
        Assert.Equal((4321u, 4322u), (link.Attr.Uid, link.Attr.Gid));
    }

    [Fact]
    public void Fifos_sockets_and_devices_are_never_created_in_the_host_folder()
    {
        Assert.Equal(Errno.EPERM, P.Mknod(Root, B("pipe"), VfsMode.Fifo | 0x1A4, 0, Guest).Error);
        Assert.Equal(Errno.EPERM, P.Mknod(Root, B("sock"), VfsMode.Socket | 0x1A4, 0, Guest).Error);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void A_fifo_the_host_put_there_is_not_opened_by_the_server()
    {
        LinuxNative.MkFifo(_dir.Combine("pipe"), 0x1A4);
        var node = P.Lookup(Root, "pipe").Value;
        Assert.Equal(VfsMode.Fifo, node.Attr.FileType);
        Assert.Equal(Errno.EACCES, P.Open(node.NodeId, OpenFlags.ReadOnly).Error);
    }

    [Fact]
    public void The_mount_root_must_be_an_existing_directory_given_by_absolute_path()
    {
        Assert.Contains("absolute", Assert.Throws<InvalidInputException>(() => HostFsProvider.Open("relative/dir", false)).Message, StringComparison.Ordinal);
        Assert.Contains("must exist", Assert.Throws<InvalidInputException>(() => HostFsProvider.Open(_dir.Combine("missing"), false)).Message, StringComparison.Ordinal);
        File.WriteAllText(_dir.Combine("file"), "");
        Assert.Throws<InvalidInputException>(() => HostFsProvider.Open(_dir.Combine("file"), false));
    }
}
