using System.Globalization;

namespace Matchlock.Guest.Users;

/// <summary>
/// The image's /etc/passwd and /etc/group, parsed by us: a static binary must not use glibc's
/// NSS (getpwnam would try to dlopen modules), and the image may not even have a libc.
/// Malformed lines are skipped like libc's parser does, not fatal.
/// </summary>
internal sealed class UserDatabase
{
    internal UserDatabase(IReadOnlyList<PasswdEntry> users, IReadOnlyList<GroupEntry> groups)
    {
        Users = users;
        Groups = groups;
    }

    internal IReadOnlyList<PasswdEntry> Users { get; }

    internal IReadOnlyList<GroupEntry> Groups { get; }

    /// <summary>Reads &lt;root&gt;/etc/passwd and &lt;root&gt;/etc/group; a missing file is an empty list.</summary>
    internal static UserDatabase Load(string root)
    {
        var passwd = ReadIfExists(Path.Combine(root, "etc/passwd"));
        var group = ReadIfExists(Path.Combine(root, "etc/group"));
        return new UserDatabase(ParsePasswd(passwd), ParseGroup(group));
    }

    internal static IReadOnlyList<PasswdEntry> ParsePasswd(string text)
    {
        var result = new List<PasswdEntry>();
        foreach (var fields in Lines(text))
        {
            if (fields.Length < 4 || fields[0].Length == 0 || !TryParseId(fields[2], out var uid) || !TryParseId(fields[3], out var gid))
            {
                continue;
            }

            result.Add(new PasswdEntry(fields[0], uid, gid, fields.Length > 5 ? fields[5] : "", fields.Length > 6 ? fields[6] : ""));
        }

        return result;
    }

    internal static IReadOnlyList<GroupEntry> ParseGroup(string text)
    {
        var result = new List<GroupEntry>();
        foreach (var fields in Lines(text))
        {
            if (fields.Length < 3 || fields[0].Length == 0 || !TryParseId(fields[2], out var gid))
            {
                continue;
            }

            var members = fields.Length > 3
                ? fields[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                : [];
            result.Add(new GroupEntry(fields[0], gid, members));
        }

        return result;
    }

    /// <summary>Decimal digits only (no sign, no spaces), within [0, 2^31 - 1] like runc.</summary>
    internal static bool TryParseId(string text, out uint id)
    {
        id = 0;
        if (text.Length == 0 || !text.All(char.IsAsciiDigit))
        {
            return false;
        }

        return uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id <= int.MaxValue;
    }

    private static IEnumerable<string[]> Lines(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            yield return line.Split(':');
        }
    }

    private static string ReadIfExists(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return "";
        }
    }
}
