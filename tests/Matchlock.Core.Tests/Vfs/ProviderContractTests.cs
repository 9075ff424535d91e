using System.Text;
using Matchlock.Core.Vfs;
using static Matchlock.Core.Tests.Vfs.VfsTestExtensions;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>
/// What every provider does the same way, run against each (<see cref="MemoryProviderTests"/>,
/// <see cref="HostFsProviderTests"/>): every operation of the FUSE surface, through node ids and
/// handles as a FUSE server drives it. No VM, no root.
/// </summary>
public abstract class ProviderContractTests : IDisposable
{
    private IVfsProvider? _provider;

    private protected IVfsProvider P => _provider ??= CreateProvider();

    public virtual void Dispose() => _provider?.Dispose();

    private protected abstract IVfsProvider CreateProvider();

    [Fact]
    public void A_created_file_is_found_by_lookup_and_reads_back_what_was_written()
    {
        Assert.Equal(Errno.ENOENT, P.Lookup(Root, "notes.txt").Error);
        var node = P.WriteFile(Root, "notes.txt", "hello, world");

        var found = P.Lookup(Root, "notes.txt").Value;
        Assert.Equal(node, found.NodeId);
        Assert.Equal(12UL, found.Attr.Size);
        Assert.Equal(VfsMode.Regular, found.Attr.FileType);
        Assert.Equal("hello, world", P.ReadAll(node));
        Assert.Equal(12UL, P.GetAttr(node).Value.Size);
    }

    [Theory]
    [InlineData("", (int)Errno.EINVAL)]
    [InlineData(".", (int)Errno.EINVAL)]
    [InlineData("..", (int)Errno.EINVAL)]
    [InlineData("../etc", (int)Errno.EINVAL)]
    [InlineData("a/b", (int)Errno.EINVAL)]
    [InlineData("/etc", (int)Errno.EINVAL)]
    [InlineData("a\0b", (int)Errno.EINVAL)]
    public void Names_that_are_not_one_plain_component_are_refused_by_every_operation(string name, int errno)
    {
        var expected = (Errno)errno;
        var file = P.WriteFile(Root, "f", "x");
        Assert.Equal(expected, P.Lookup(Root, name).Error);
        Assert.Equal(expected, P.Mkdir(Root, name).Error);
        Assert.Equal(expected, P.Create(Root, name).Error);
        Assert.Equal(expected, P.Mknod(Root, B(name), VfsMode.Regular | 0x1A4, 0, Guest).Error);
        Assert.Equal(expected, P.Symlink(Root, name, "target").Error);
        Assert.Equal(expected, P.Link(file, Root, name).Error);
        Assert.Equal(expected, P.Unlink(Root, name));
        Assert.Equal(expected, P.Rmdir(Root, name));
        Assert.Equal(expected, P.Rename(Root, "f", Root, name));
        Assert.Equal(expected, P.Rename(Root, name, Root, "g"));
    }

    [Fact]
    public void Names_longer_than_255_bytes_and_a_4_KiB_name_are_too_long()
    {
        Assert.Equal(Errno.ENAMETOOLONG, P.Lookup(Root, new string('a', 256)).Error);
        Assert.Equal(Errno.ENAMETOOLONG, P.Create(Root, new string('a', 4096)).Error);
        Assert.Equal(Errno.ENAMETOOLONG, P.Mkdir(Root, new string('/', 4096)).Error);
        Assert.True(P.Create(Root, new string('a', 255)).IsOk);
    }

    [Fact]
    public void Readdir_lists_every_name_and_resumes_from_an_entrys_offset()
    {
        var names = Enumerable.Range(0, 300).Select(i => $"file-{i:D3}").ToHashSet();
        foreach (var name in names)
        {
            P.Forget(P.WriteFile(Root, name, ""), 1);
        }

        Assert.Equal(names, P.List(Root).Select(NameOf).ToHashSet());

        // Take ten entries per call, as a FUSE reply buffer would, continuing from the last offset.
        var handle = P.OpenDir(Root).Value;
        List<string> seen = [];
        ulong offset = 0;
        while (true)
        {
            var taken = 0;
            Assert.Equal(Errno.None, P.ReadDir(Root, handle, offset, false, (in VfsDirEntry e) =>
            {
                if (taken == 10)
                {
                    return false;
                }

                taken++;
                seen.Add(NameOf(e));
                offset = e.Offset;
                return true;
            }));
            if (taken == 0)
            {
                break;
            }
        }

        Assert.Equal(Errno.None, P.ReleaseDir(Root, handle));
        Assert.Equal(302, seen.Count);
        Assert.Equal(names, seen.Where(n => n is not "." and not "..").ToHashSet());
    }

    [Fact]
    public void Readdirplus_looks_each_entry_up_and_an_entry_not_taken_is_not_counted()
    {
        P.Forget(P.Mkdir(Root, "sub").Value.NodeId, 1);
        P.Forget(P.WriteFile(Root, "a", "abc"), 1);
        var entries = P.List(Root, plus: true);
        Assert.All(entries, e => Assert.NotNull(e.Entry));
        var a = Assert.Single(entries, e => NameOf(e) == "a").Entry!.Value;
        Assert.Equal(3UL, a.Attr.Size);
        Assert.Equal(a.Attr.Ino, P.GetAttr(a.NodeId).Value.Ino);
        Assert.Equal(VfsMode.Directory >> 12, Assert.Single(entries, e => NameOf(e) == "sub").Type);

        foreach (var e in entries)
        {
            P.Forget(e.Entry!.Value.NodeId, 1);
        }

        var before = NodeCount;
        var handle = P.OpenDir(Root).Value;
        Assert.Equal(Errno.None, P.ReadDir(Root, handle, 0, true, (in VfsDirEntry e) => e.Entry is null));
        P.ReleaseDir(Root, handle);
        Assert.Equal(before, NodeCount);
    }

    [Fact]
    public void Forget_drops_a_node_once_every_lookup_is_given_back()
    {
        var node = P.WriteFile(Root, "f", "x");
        Assert.Equal(node, P.Lookup(Root, "f").Value.NodeId);
        var count = NodeCount;
        P.Forget(node, 1);
        Assert.Equal(count, NodeCount);
        P.Forget(node, 1);
        Assert.Equal(count - 1, NodeCount);
        Assert.Equal(Errno.ENOENT, P.GetAttr(node).Error);

        P.Forget(Root, 100);
        Assert.True(P.GetAttr(Root).IsOk);
        P.Forget(12345, 1);
    }

    [Fact]
    public void Inode_numbers_stay_the_same_across_forget_and_lookup_again()
    {
        var dir = P.Mkdir(Root, "d").Value;
        var ino = dir.Attr.Ino;
        P.Forget(dir.NodeId, 1);
        Assert.Equal(ino, P.Lookup(Root, "d").Value.Attr.Ino);
        Assert.NotEqual(ino, P.GetAttr(Root).Value.Ino);
    }

    [Fact]
    public void Mkdir_and_rmdir_keep_link_counts_and_refuse_what_posix_refuses()
    {
        var rootLinks = P.GetAttr(Root).Value.Nlink;
        var dir = P.Mkdir(Root, "d", 0x1C0).Value;
        Assert.Equal(VfsMode.Directory | 0x1C0u, dir.Attr.Mode);
        Assert.Equal(2u, dir.Attr.Nlink);
        Assert.Equal(rootLinks + 1, P.GetAttr(Root).Value.Nlink);
        Assert.Equal(Errno.EEXIST, P.Mkdir(Root, "d").Error);

        P.WriteFile(dir.NodeId, "inner", "x");
        Assert.Equal(Errno.ENOTEMPTY, P.Rmdir(Root, "d"));
        Assert.Equal(Errno.EISDIR, P.Unlink(Root, "d"));
        Assert.Equal(Errno.ENOTDIR, P.Rmdir(dir.NodeId, "inner"));
        Assert.Equal(Errno.None, P.Unlink(dir.NodeId, "inner"));
        Assert.Equal(Errno.None, P.Rmdir(Root, "d"));
        Assert.Equal(Errno.ENOENT, P.Lookup(Root, "d").Error);
        Assert.Equal(rootLinks, P.GetAttr(Root).Value.Nlink);
        Assert.Equal(Errno.ENOENT, P.Create(dir.NodeId, "late").Error);
    }

    [Fact]
    public void An_unlinked_file_stays_readable_through_its_open_handle()
    {
        var created = P.Create(Root, "tmp").Value;
        var node = created.Entry.NodeId;
        P.Write(node, created.Handle, 0, B("still here"));
        Assert.Equal(Errno.None, P.Unlink(Root, "tmp"));
        Assert.Equal(Errno.ENOENT, P.Lookup(Root, "tmp").Error);

        var buffer = new byte[64];
        var n = P.Read(node, created.Handle, 0, buffer).Value;
        Assert.Equal("still here", Encoding.UTF8.GetString(buffer, 0, n));
        Assert.Equal(0u, P.GetAttr(node).Value.Nlink);
        Assert.Equal(Errno.None, P.Release(node, created.Handle));
        Assert.Equal(Errno.EBADF, P.Read(node, created.Handle, 0, buffer).Error);
    }

    [Fact]
    public void Rename_overwrites_a_file_atomically_and_noreplace_refuses_to()
    {
        P.WriteFile(Root, "config", "old");
        P.WriteFile(Root, "config.tmp", "new");
        Assert.Equal(Errno.EEXIST, P.Rename(Root, "config.tmp", Root, "config", VfsRenameFlags.NoReplace));
        Assert.Equal("old", P.ReadAll(P.Lookup(Root, "config").Value.NodeId));

        Assert.Equal(Errno.None, P.Rename(Root, "config.tmp", Root, "config"));
        Assert.Equal(Errno.ENOENT, P.Lookup(Root, "config.tmp").Error);
        Assert.Equal("new", P.ReadAll(P.Lookup(Root, "config").Value.NodeId));

        Assert.Equal(Errno.None, P.Rename(Root, "config", Root, "fresh", VfsRenameFlags.NoReplace));
        Assert.Equal(Errno.ENOENT, P.Rename(Root, "config", Root, "x"));
    }

    [Fact]
    public void Rename_moves_between_directories_and_exchange_swaps_two_names()
    {
        var a = P.Mkdir(Root, "a").Value.NodeId;
        var b = P.Mkdir(Root, "b").Value.NodeId;
        P.WriteFile(a, "one", "1");
        P.WriteFile(b, "two", "2");
        Assert.Equal(Errno.None, P.Rename(a, "one", b, "one"));
        Assert.Equal("1", P.ReadAll(P.Lookup(b, "one").Value.NodeId));

        Assert.Equal(Errno.None, P.Rename(b, "one", b, "two", VfsRenameFlags.Exchange));
        Assert.Equal("2", P.ReadAll(P.Lookup(b, "one").Value.NodeId));
        Assert.Equal("1", P.ReadAll(P.Lookup(b, "two").Value.NodeId));
        Assert.Equal(Errno.ENOENT, P.Rename(b, "one", b, "absent", VfsRenameFlags.Exchange));

        Assert.Equal(Errno.EINVAL, P.Rename(b, "one", b, "x", VfsRenameFlags.Whiteout));
        Assert.Equal(Errno.EINVAL, P.Rename(b, "one", b, "two", VfsRenameFlags.Exchange | VfsRenameFlags.NoReplace));
    }

    [Fact]
    public void A_directory_cannot_be_renamed_into_itself_or_over_a_non_empty_directory()
    {
        var a = P.Mkdir(Root, "a").Value.NodeId;
        var inner = P.Mkdir(a, "inner").Value.NodeId;
        Assert.Equal(Errno.EINVAL, P.Rename(Root, "a", inner, "a"));
        P.Mkdir(Root, "full");
        P.WriteFile(P.Lookup(Root, "full").Value.NodeId, "x", "x");
        Assert.Equal(Errno.ENOTEMPTY, P.Rename(Root, "a", Root, "full"));
        P.WriteFile(Root, "file", "x");
        Assert.Equal(Errno.ENOTDIR, P.Rename(Root, "a", Root, "file"));
        Assert.Equal(Errno.EISDIR, P.Rename(Root, "file", Root, "a"));
        P.Mkdir(Root, "empty");
        Assert.Equal(Errno.None, P.Rename(Root, "a", Root, "empty"));
        Assert.True(P.Lookup(P.Lookup(Root, "empty").Value.NodeId, "inner").IsOk);
    }

    [Fact]
    public void A_symlink_is_stored_as_text_and_never_followed()
    {
        var link = P.Symlink(Root, "link", "../../etc/passwd").Value;
        Assert.Equal(VfsMode.Symlink, link.Attr.FileType);
        Assert.Equal("../../etc/passwd", Encoding.UTF8.GetString(P.ReadLink(link.NodeId).Value));
        Assert.Equal(Errno.ELOOP, P.Open(link.NodeId, OpenFlags.ReadOnly).Error);
        Assert.Equal(Errno.ENOTDIR, P.OpenDir(link.NodeId).Error);
        Assert.Equal(Errno.ENOTDIR, P.Lookup(link.NodeId, "x").Error);
        Assert.Equal(Errno.EINVAL, P.ReadLink(Root).Error);
        Assert.Equal(Errno.ENOENT, P.Symlink(Root, "empty", "").Error);
        Assert.Equal(Errno.EEXIST, P.Symlink(Root, "link", "x").Error);
    }

    [Fact]
    public void A_hard_link_is_the_same_node_with_two_names()
    {
        var file = P.WriteFile(Root, "a", "shared");
        var linked = P.Link(file, Root, "b").Value;
        Assert.Equal(file, linked.NodeId);
        Assert.Equal(2u, linked.Attr.Nlink);
        Assert.Equal(P.GetAttr(file).Value.Ino, linked.Attr.Ino);
        Assert.Equal("shared", P.ReadAll(P.Lookup(Root, "b").Value.NodeId));
        Assert.Equal(Errno.None, P.Unlink(Root, "a"));
        Assert.Equal(1u, P.GetAttr(file).Value.Nlink);

        Assert.Equal(Errno.EPERM, P.Link(P.Mkdir(Root, "d").Value.NodeId, Root, "d2").Error);
        Assert.Equal(Errno.EEXIST, P.Link(file, Root, "d").Error);
        Assert.Equal(Errno.ENOENT, P.Link(987654, Root, "forged").Error);
    }

    [Fact]
    public void Setattr_changes_mode_size_and_times()
    {
        var node = P.WriteFile(Root, "f", "0123456789");
        Assert.Equal(VfsMode.Regular | 0x1C0u, P.SetAttr(node, new VfsSetAttr { Mode = 0x1C0 }).Value.Mode);
        Assert.Equal(4UL, P.SetAttr(node, new VfsSetAttr { Size = 4 }).Value.Size);
        Assert.Equal("0123", P.ReadAll(node));
        Assert.Equal(8192UL, P.SetAttr(node, new VfsSetAttr { Size = 8192 }).Value.Size);

        var when = new VfsTime(1_700_000_000, 123_000_000);
        var attr = P.SetAttr(node, new VfsSetAttr { Atime = when, Mtime = when }).Value;
        Assert.Equal((when, when), (attr.Atime, attr.Mtime));
        attr = P.SetAttr(node, new VfsSetAttr { MtimeNow = true }).Value;
        Assert.True(attr.Mtime.Seconds > when.Seconds);
        Assert.Equal(when, attr.Atime);

        Assert.Equal(Errno.EISDIR, P.SetAttr(Root, new VfsSetAttr { Size = 0 }).Error);
    }

    [Fact]
    public void Truncate_through_an_open_handle_and_o_trunc_empty_the_file()
    {
        var node = P.WriteFile(Root, "f", "0123456789");
        var handle = P.Open(node, OpenFlags.ReadWrite).Value;
        Assert.Equal(2UL, P.SetAttr(node, new VfsSetAttr { Size = 2, Handle = handle }).Value.Size);
        P.Release(node, handle);
        handle = P.Open(node, OpenFlags.WriteOnly | OpenFlags.Truncate).Value;
        Assert.Equal(0UL, P.GetAttr(node).Value.Size);
        P.Release(node, handle);
    }

    [Fact]
    public void Append_handles_write_at_the_end_whatever_the_offset()
    {
        var node = P.WriteFile(Root, "log", "one\n");
        var handle = P.Open(node, OpenFlags.WriteOnly | OpenFlags.Append).Value;
        Assert.Equal(4, P.Write(node, handle, 0, B("two\n")).Value);
        P.Release(node, handle);
        Assert.Equal("one\ntwo\n", P.ReadAll(node));
    }

    [Fact]
    public void Create_without_excl_opens_an_existing_file_and_with_excl_refuses()
    {
        P.WriteFile(Root, "f", "keep");
        Assert.Equal(Errno.EEXIST, P.Create(Root, "f", flags: OpenFlags.ReadWrite | OpenFlags.Exclusive).Error);
        var again = P.Create(Root, "f").Value;
        Assert.Equal(4UL, again.Entry.Attr.Size);
        P.Release(again.Entry.NodeId, again.Handle);
        P.Mkdir(Root, "dir");
        Assert.Equal(Errno.EISDIR, P.Create(Root, "dir").Error);
    }

    [Fact]
    public void Flush_fsync_and_fallocate_work_on_open_handles_and_stale_handles_are_ebadf()
    {
        var created = P.Create(Root, "f").Value;
        var node = created.Entry.NodeId;
        Assert.Equal(Errno.None, P.Flush(node, created.Handle));
        Assert.Equal(Errno.None, P.Fsync(node, created.Handle, dataOnly: false));
        Assert.Equal(Errno.None, P.Fsync(node, created.Handle, dataOnly: true));
        Assert.Equal(Errno.None, P.Fallocate(node, created.Handle, 0, 0, 10000));
        Assert.Equal(10000UL, P.GetAttr(node).Value.Size);
        Assert.Equal(Errno.None, P.Fallocate(node, created.Handle, 1, 0, 20000));
        Assert.Equal(10000UL, P.GetAttr(node).Value.Size);
        Assert.Equal(Errno.EBADF, P.Flush(Root, created.Handle));
        Assert.Equal(Errno.None, P.Release(node, created.Handle));
        Assert.Equal(Errno.EBADF, P.Release(node, created.Handle));
        Assert.Equal(Errno.EBADF, P.Write(node, 4242, 0, B("x")).Error);
    }

    [Fact]
    public void Opening_a_directory_as_a_file_or_a_file_as_a_directory_is_refused()
    {
        var file = P.WriteFile(Root, "f", "x");
        Assert.Equal(Errno.EISDIR, P.Open(Root, OpenFlags.ReadOnly).Error);
        Assert.Equal(Errno.ENOTDIR, P.OpenDir(file).Error);
        Assert.Equal(Errno.ENOTDIR, P.Lookup(file, "x").Error);
        Assert.Equal(Errno.ENOTDIR, P.Create(file, "x").Error);
    }

    [Fact]
    public void Mknod_makes_regular_files_and_refuses_device_nodes()
    {
        var made = P.Mknod(Root, B("plain"), VfsMode.Regular | 0x1A4, 0, Guest).Value;
        Assert.Equal(VfsMode.Regular, made.Attr.FileType);
        Assert.Equal(0UL, made.Attr.Size);
        Assert.Equal(Errno.EPERM, P.Mknod(Root, B("null"), VfsMode.Char | 0x1B6, 0x103, Guest).Error);
        Assert.Equal(Errno.EPERM, P.Mknod(Root, B("disk"), VfsMode.Block | 0x1B0, 0x800, Guest).Error);
        Assert.Equal(Errno.ENOENT, P.Lookup(Root, "null").Error);
    }

    [Fact]
    public void User_xattrs_round_trip_and_other_namespaces_cannot_be_set()
    {
        var node = P.WriteFile(Root, "f", "x");
        Assert.Equal(Errno.ENODATA, P.GetXattr(node, "user.color").Error);
        Assert.Equal(Errno.None, P.SetXattr(node, "user.color", B("blue"), 0));
        Assert.Equal("blue", Encoding.UTF8.GetString(P.GetXattr(node, "user.color").Value));
        Assert.Equal(Errno.EEXIST, P.SetXattr(node, "user.color", B("red"), 1));
        Assert.Equal(Errno.ENODATA, P.SetXattr(node, "user.other", B("red"), 2));
        Assert.Equal(["user.color"], P.ListXattr(node).Value);
        Assert.Equal(Errno.None, P.RemoveXattr(node, "user.color"));
        Assert.Equal(Errno.ENODATA, P.RemoveXattr(node, "user.color"));
        Assert.Empty(P.ListXattr(node).Value);

        Assert.Equal(Errno.EOPNOTSUPP, P.SetXattr(node, "trusted.overlay.opaque", B("y"), 0));
        Assert.Equal(Errno.EOPNOTSUPP, P.SetXattr(node, "security.capability", new byte[20], 0));
        var link = P.Symlink(Root, "l", "f").Value.NodeId;
        Assert.Equal(Errno.EPERM, P.SetXattr(link, "user.color", B("x"), 0));
    }

    [Fact]
    public void Statfs_reports_a_usable_filesystem()
    {
        var st = P.StatFs(Root).Value;
        Assert.True(st.BlockSize > 0);
        Assert.True(st.Blocks >= st.BlocksFree);
        Assert.Equal(255u, st.NameLength);
    }

    [Fact]
    public void The_guests_owner_and_full_mode_are_reported_for_what_it_creates()
    {
        var file = P.Create(Root, "tool", 0x1ED).Value.Entry;
        Assert.Equal((1000u, 1000u), (file.Attr.Uid, file.Attr.Gid));
        var dir = P.Mkdir(Root, "d", 0x1C0).Value;
        Assert.Equal((1000u, 1000u, VfsMode.Directory | 0x1C0u), (dir.Attr.Uid, dir.Attr.Gid, dir.Attr.Mode));

        var attr = P.SetAttr(file.NodeId, new VfsSetAttr { Uid = 0, Gid = 50, Mode = VfsMode.SetUid | 0x1ED }).Value;
        Assert.Equal((0u, 50u, VfsMode.Regular | VfsMode.SetUid | 0x1EDu), (attr.Uid, attr.Gid, attr.Mode));
        Assert.Equal(attr, P.GetAttr(file.NodeId).Value with { Ctime = attr.Ctime, Atime = attr.Atime });
    }

    private int NodeCount => P switch
    {
        HostFsProvider h => h.NodeCount,
        MemoryProvider m => m.NodeCount,
        _ => throw new InvalidOperationException(),
    };
}
