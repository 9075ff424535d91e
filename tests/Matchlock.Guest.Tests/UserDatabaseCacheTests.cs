using Matchlock.Guest.Users;

namespace Matchlock.Guest.Tests;

/// <summary>The user database is read once and again only after /etc/passwd or /etc/group changed.</summary>
public sealed class UserDatabaseCacheTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("matchlock-users-").FullName;

    public UserDatabaseCacheTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        Write("passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        Write("group", "root:x:0:\nstaff:x:50:alice\n");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Unchanged_files_are_parsed_once()
    {
        var cache = new UserDatabaseCache(_root, racyWindow: TimeSpan.Zero);
        Assert.Same(cache.Get(), cache.Get());
    }

    [Fact]
    public void A_passwd_replaced_by_rename_is_read_again()
    {
        var cache = new UserDatabaseCache(_root, racyWindow: TimeSpan.Zero);
        Assert.Equal(["root", "alice"], cache.Get().Users.Select(u => u.Name));

        // What useradd and vipw do: write a new file, rename it over the old one.
        var next = Path.Combine(_root, "etc", "passwd+");
        File.WriteAllText(next, "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n");
        File.Move(next, Path.Combine(_root, "etc", "passwd"), overwrite: true);
        Assert.Equal(["root", "alice", "bob"], cache.Get().Users.Select(u => u.Name));
    }

    [Fact]
    public void A_group_file_that_appears_later_is_read()
    {
        File.Delete(Path.Combine(_root, "etc", "group"));
        var cache = new UserDatabaseCache(_root, racyWindow: TimeSpan.Zero);
        Assert.Empty(cache.Get().Groups);
        Write("group", "root:x:0:\n");
        Assert.Equal(["root"], cache.Get().Groups.Select(g => g.Name));
    }

    [Fact]
    public void A_recently_changed_file_is_not_trusted_even_if_an_in_place_edit_keeps_its_size()
    {
        // The default window: both files were just written, so nothing is cached yet, and an
        // edit in the same clock tick that keeps size and inode is still seen.
        var cache = new UserDatabaseCache(_root);
        Assert.Equal("alice", cache.Get().Users[1].Name);
        using (var file = new FileStream(Path.Combine(_root, "etc", "passwd"), FileMode.Open, FileAccess.Write))
        {
            file.Position = "root:x:0:0:root:/root:/bin/sh\n".Length;
            file.Write("carol"u8);
        }

        Assert.Equal("carol", cache.Get().Users[1].Name);
    }

    private void Write(string name, string text) => File.WriteAllText(Path.Combine(_root, "etc", name), text);
}
