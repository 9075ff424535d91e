namespace Matchlock.Guest.Users;

/// <summary>
/// Resolves a user spec ("", "uid", "name", "uid:gid", "name:group", ...) the way Docker does
/// (runc's libcontainer/user.GetExecUser), so images behave the same here:
/// <list type="bullet">
/// <item>a numeric user is always a uid; if passwd has it, its gid and home are used, else gid 0
/// and home "/";</item>
/// <item>a name must exist in passwd ("unable to find user NAME");</item>
/// <item>without an explicit group, supplementary groups are the /etc/group entries listing the
/// user's name; with one, that group (by name, or numeric) becomes the primary gid and there are
/// no supplementary groups;</item>
/// <item>"" means root (uid 0), looked up for its home.</item>
/// </list>
/// </summary>
internal static class UserSpecResolver
{
    internal static ExecUser Resolve(string? spec, UserDatabase database)
    {
        spec ??= "";
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var userArg = colon < 0 ? spec : spec[..colon];
        var groupArg = colon < 0 ? "" : spec[(colon + 1)..];

        var userIsNumeric = UserDatabase.TryParseId(userArg, out var uidArg);
        if (userArg.Length == 0)
        {
            uidArg = 0;
            userIsNumeric = true;
        }
        else if (!userIsNumeric && userArg.All(char.IsAsciiDigit))
        {
            throw new UserResolutionException($"user id {userArg} is out of range (0-{int.MaxValue})");
        }

        var matched = database.Users.FirstOrDefault(u => userIsNumeric ? u.Uid == uidArg : u.Name == userArg);
        uint uid;
        uint gid;
        string home;
        string? name;
        if (matched is not null)
        {
            (uid, gid, home, name) = (matched.Uid, matched.Gid, matched.Home, matched.Name);
        }
        else if (userIsNumeric)
        {
            (uid, gid, home, name) = (uidArg, 0, "/", null);
        }
        else
        {
            throw new UserResolutionException($"unable to find user {userArg}: no matching entries in passwd file");
        }

        if (home.Length == 0)
        {
            home = "/";
        }

        IReadOnlyList<uint> supplementary = [];
        if (groupArg.Length > 0)
        {
            var groupIsNumeric = UserDatabase.TryParseId(groupArg, out var gidArg);
            var group = database.Groups.FirstOrDefault(g => groupIsNumeric ? g.Gid == gidArg : g.Name == groupArg);
            if (group is not null)
            {
                gid = group.Gid;
            }
            else if (groupIsNumeric)
            {
                gid = gidArg;
            }
            else
            {
                throw new UserResolutionException($"unable to find group {groupArg}: no matching entries in group file");
            }
        }
        else if (matched is not null)
        {
            supplementary = database.Groups
                .Where(g => g.Members.Contains(matched.Name, StringComparer.Ordinal))
                .Select(g => g.Gid)
                .Distinct()
                .ToArray();
        }

        return new ExecUser(uid, gid, supplementary, home, name);
    }
}
