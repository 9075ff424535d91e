using System.Security.Cryptography;

namespace Matchlock.Core.Images;

/// <summary>
/// A private scratch directory <c>root/.tmp-&lt;random&gt;</c> (mode 0700) that is deleted on
/// dispose. It holds an exclusive lock on its own <c>.lock</c> file while alive, so a later import
/// can tell the leftovers of a killed process (lock free) from a live import (lock held).
/// </summary>
internal sealed class StagingDirectory : IDisposable
{
    public const string Prefix = ".tmp-";
    private const string LockName = ".lock";

    private readonly FileStream _lock;

    private StagingDirectory(string path, FileStream lockFile)
    {
        Path = path;
        _lock = lockFile;
    }

    public string Path { get; }

    public static StagingDirectory Create(string root)
    {
        var path = System.IO.Path.Combine(root, Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)));
        // 0700: the flattened tree may hold setuid binaries; nobody else on the host may reach them.
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            return new StagingDirectory(path, OpenLock(path));
        }
        catch
        {
            Directory.Delete(path, recursive: true);
            throw;
        }
    }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Deletes staging directories whose owner died (their lock is free); live ones are skipped.</summary>
    public static void SweepAbandoned(string root)
    {
        foreach (var dir in Directory.EnumerateDirectories(root, Prefix + "*"))
        {
            if (FileTree.Lstat(dir) != NodeKind.Directory)
            {
                continue;
            }

            if (!File.Exists(System.IO.Path.Combine(dir, LockName))
                && Directory.GetLastWriteTimeUtc(dir) > DateTime.UtcNow.AddMinutes(-10))
            {
                continue; // Possibly created a moment ago, its owner about to take the lock.
            }

            FileStream? probe;
            try
            {
                probe = OpenLock(dir);
            }
            catch (IOException)
            {
                continue; // Held: a live import or removal owns it.
            }

            // Nobody re-acquires a staging lock once released, so holding it while deleting is enough.
            using (probe)
            {
                FileTree.DeleteTree(dir);
            }
        }
    }

    public void Dispose()
    {
        try
        {
            if (FileTree.Lstat(Path) == NodeKind.Directory)
            {
                FileTree.DeleteTree(Path);
            }
        }
        finally
        {
            _lock.Dispose();
        }
    }

    // FileShare.None makes .NET take flock(LOCK_EX | LOCK_NB) on Unix; IOException when another holds it.
    private static FileStream OpenLock(string dir) =>
        new(System.IO.Path.Combine(dir, LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
}
