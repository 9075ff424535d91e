using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Users;

/// <summary>
/// The image's user database for every exec, read again only when /etc/passwd or /etc/group
/// changed: two stat(2) calls per exec instead of reading and parsing both files (~1.3 ms of a
/// ~10 ms exec under TCG, bench/exec/README.md).
/// </summary>
/// <remarks>
/// "Changed" is any difference in device, inode, size, mtime or ctime, so a rename over the
/// file (useradd, vipw) and an edit in place both count. File timestamps come from the kernel's
/// coarse clock, so an edit within the same tick as our read, leaving the size alone, would keep
/// the stamp; like git's "racily clean" index entries, a file changed less than
/// <see cref="RacyWindow"/> before the read is not cached (tests pass a shorter window).
/// </remarks>
internal sealed class UserDatabaseCache(string root, TimeSpan? racyWindow = null)
{
    /// <summary>Far more than any coarse clock tick; a file this recently changed is read every time.</summary>
    internal static readonly TimeSpan RacyWindow = TimeSpan.FromSeconds(2);

    private readonly TimeSpan _racyWindow = racyWindow ?? RacyWindow;
    private readonly string _passwd = Path.Combine(root, "etc/passwd");
    private readonly string _group = Path.Combine(root, "etc/group");
    private readonly Lock _lock = new(); // guards _cached
    private Entry? _cached;

    internal UserDatabase Get()
    {
        // Stamps first, then the read: a change in between is seen as a change next time.
        var passwd = FileStamp.Of(_passwd);
        var group = FileStamp.Of(_group);
        lock (_lock)
        {
            if (_cached is { } hit && hit.Passwd == passwd && hit.Group == group)
            {
                return hit.Database;
            }
        }

        var database = UserDatabase.Load(root);
        var settled = DateTimeOffset.UtcNow - _racyWindow;
        lock (_lock)
        {
            _cached = passwd.SettledBefore(settled) && group.SettledBefore(settled)
                ? new Entry(passwd, group, database)
                : null;
        }

        return database;
    }

    private sealed record Entry(FileStamp Passwd, FileStamp Group, UserDatabase Database);

    /// <summary>What identifies one version of a file; <c>default</c> for a missing file.</summary>
    private readonly record struct FileStamp(ulong Device, ulong Inode, long Size, long Modified, long ModifiedNs, long Changed, long ChangedNs)
    {
        internal static unsafe FileStamp Of(string path)
        {
            StatBuffer buffer;
            return Libc.stat(path, &buffer) != 0
                ? default
                : new FileStamp(buffer.Device, buffer.Inode, buffer.Size, buffer.ModifiedSeconds, buffer.ModifiedNanoseconds, buffer.ChangedSeconds, buffer.ChangedNanoseconds);
        }

        /// <summary>True when the file's last change (ctime, which every write and rename-over moves) is before <paramref name="instant"/>.</summary>
        internal bool SettledBefore(DateTimeOffset instant) =>
            // In 100 ns ticks, not whole milliseconds: truncating "now" to the millisecond made a
            // file changed earlier in that same millisecond look changed after it (a flaky test).
            ((Changed * 10_000_000L) + (ChangedNs / 100)) < (instant - DateTimeOffset.UnixEpoch).Ticks;
    }
}
