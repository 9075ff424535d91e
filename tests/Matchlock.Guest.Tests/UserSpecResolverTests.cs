using Matchlock.Guest.Users;

namespace Matchlock.Guest.Tests;

public sealed class UserSpecResolverTests
{
    private const string Passwd = """
        root:x:0:0:root:/root:/bin/bash
        # a comment
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        broken line without colons
        app:x:1000:1000:App,,,:/home/app:/bin/sh
        nohome:x:1001:1001::::
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
        """;

    private const string Group = """
        root:x:0:
        daemon:x:1:
        wheel:x:10:app,other
        audio:x:29: app
        app:x:1000:
        staff:x:50:
        nogroup:x:65534:
        """;

    private static readonly UserDatabase Database = new(UserDatabase.ParsePasswd(Passwd), UserDatabase.ParseGroup(Group));

    [Fact]
    public void Malformed_passwd_lines_are_skipped()
    {
        Assert.Equal(["root", "daemon", "app", "nohome", "nobody"], Database.Users.Select(u => u.Name));
    }

    [Fact]
    public void Empty_spec_is_root_with_its_home()
    {
        var user = UserSpecResolver.Resolve("", Database);
        Assert.Equal((0u, 0u, "/root"), (user.Uid, user.Gid, user.Home));
        Assert.True(user.IsPlainRoot);
    }

    [Fact]
    public void Name_resolves_uid_gid_home_and_member_groups()
    {
        var user = UserSpecResolver.Resolve("app", Database);
        Assert.Equal((1000u, 1000u, "/home/app", "app"), (user.Uid, user.Gid, user.Home, user.Name));
        Assert.Equal([10u, 29u], user.SupplementaryGroups);
    }

    [Fact]
    public void Numeric_uid_found_in_passwd_behaves_like_its_name()
    {
        var user = UserSpecResolver.Resolve("1000", Database);
        Assert.Equal((1000u, 1000u, "/home/app"), (user.Uid, user.Gid, user.Home));
        Assert.Equal([10u, 29u], user.SupplementaryGroups);
    }

    [Fact]
    public void Unknown_numeric_uid_gets_gid_0_and_home_slash()
    {
        var user = UserSpecResolver.Resolve("4242", Database);
        Assert.Equal((4242u, 0u, "/", null), (user.Uid, user.Gid, user.Home, user.Name));
        Assert.Empty(user.SupplementaryGroups);
    }

    [Fact]
    public void Explicit_group_by_name_or_number_replaces_gid_and_drops_supplementary_groups()
    {
        var byName = UserSpecResolver.Resolve("app:staff", Database);
        Assert.Equal((1000u, 50u), (byName.Uid, byName.Gid));
        Assert.Empty(byName.SupplementaryGroups);

        var byNumber = UserSpecResolver.Resolve("4242:777", Database);
        Assert.Equal((4242u, 777u), (byNumber.Uid, byNumber.Gid));
    }

    [Fact]
    public void Empty_home_falls_back_to_slash()
    {
        Assert.Equal("/", UserSpecResolver.Resolve("nohome", Database).Home);
    }

    [Theory]
    [InlineData("ghost", "unable to find user ghost: no matching entries in passwd file")]
    [InlineData("app:ghosts", "unable to find group ghosts: no matching entries in group file")]
    [InlineData("99999999999", "user id 99999999999 is out of range")]
    public void Unknown_names_fail_with_a_clear_message(string spec, string message)
    {
        var error = Assert.Throws<UserResolutionException>(() => UserSpecResolver.Resolve(spec, Database));
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_files_still_allow_numeric_users()
    {
        var empty = UserDatabase.Load(Path.Combine(Path.GetTempPath(), "does-not-exist-" + Guid.NewGuid()));
        Assert.Equal(123u, UserSpecResolver.Resolve("123:456", empty).Uid);
        Assert.Throws<UserResolutionException>(() => UserSpecResolver.Resolve("root", empty));
    }
}
