namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// The operation names rules and events use (docs/VFS.md "Hooks and events"): the original's
/// (<c>stat, readdir, open, create, mkdir, chmod, remove, remove_all, rename, symlink, readlink,
/// read, write, close, sync, truncate</c>) and ours for what FUSE also does (<c>chown, utimes,
/// link, statfs, xattr</c>). <c>remove_all</c> is the original's name for a recursive delete; a
/// FUSE server sees each removal, so a rule for it matches every <c>remove</c>.
/// </summary>
public static class VfsOps
{
    public const string Stat = "stat";
    public const string ReadDir = "readdir";
    public const string Open = "open";
    public const string Create = "create";
    public const string Mkdir = "mkdir";
    public const string Chmod = "chmod";
    public const string Chown = "chown";
    public const string Utimes = "utimes";
    public const string Truncate = "truncate";
    public const string Remove = "remove";
    public const string RemoveAll = "remove_all";
    public const string Rename = "rename";
    public const string Symlink = "symlink";
    public const string ReadLink = "readlink";
    public const string Link = "link";
    public const string Read = "read";
    public const string Write = "write";
    public const string Close = "close";
    public const string Sync = "sync";
    public const string StatFs = "statfs";
    public const string Xattr = "xattr";

    public static IReadOnlyList<string> All { get; } =
    [
        Stat, ReadDir, Open, Create, Mkdir, Chmod, Chown, Utimes, Truncate, Remove, RemoveAll, Rename,
        Symlink, ReadLink, Link, Read, Write, Close, Sync, StatFs, Xattr,
    ];

    public static bool IsKnown(string op) => All.Contains(op, StringComparer.Ordinal);

    /// <summary>Whether a rule listing <paramref name="ruleOp"/> covers an operation named <paramref name="op"/>.</summary>
    internal static bool Covers(string ruleOp, string op) =>
        string.Equals(ruleOp, op, StringComparison.Ordinal) || (ruleOp == RemoveAll && op == Remove);
}
