using Matchlock.Core.Interop;

namespace Matchlock.Core.Images;

/// <summary>What <see cref="ImageStore.CollectGarbageAsync"/> deleted.</summary>
/// <param name="Blobs">Blob files deleted (unreferenced, or left behind by a crash).</param>
/// <param name="RootFilesystems">Root filesystem files no image names any more.</param>
/// <param name="BytesFreed">Their total size.</param>
public sealed record GarbageCollection(int Blobs, int RootFilesystems, long BytesFreed);

public sealed partial class ImageStore
{
    /// <summary>
    /// Deletes every blob no image references (layers of removed images, shared ones only when
    /// the last image using them is gone), and files a crashed pull or import left behind. Waits
    /// for pulls and imports in progress (they hold the gc lock shared), so it never deletes what
    /// one of them is about to reference.
    /// </summary>
    public async Task<GarbageCollection> CollectGarbageAsync(Action<string>? onWait = null, CancellationToken cancellationToken = default)
    {
        using var db = OpenExisting();
        if (db is null)
        {
            return new GarbageCollection(0, 0, 0);
        }

        using var gcLock = await FileLock.AcquireAsync(
            Path.Combine(Root, GcLockFile),
            exclusive: true,
            () => onWait?.Invoke("waiting for pulls and imports in progress to finish"),
            cancellationToken);
        StagingDirectory.SweepAbandoned(Root);

        var (_, liveRootfs, liveBlobs) = db.CollectGarbage();
        long freed = 0;
        var blobs = DeleteFilesExcept(Path.Combine(Root, BlobsDir), name => liveBlobs.Contains("sha256:" + name), ref freed);
        var rootfs = DeleteFilesExcept(Path.Combine(Root, RootfsDir), liveRootfs.Contains, ref freed);

        // Per-image lock files are empty and only mean something while held; drop the idle ones.
        var locks = Path.Combine(Root, LocksDir);
        if (Directory.Exists(locks))
        {
            foreach (var file in Directory.EnumerateFiles(locks, "*.lock"))
            {
                using var idle = FileLock.TryAcquire(file, exclusive: true);
                if (idle is not null)
                {
                    File.Delete(file);
                }
            }
        }

        return new GarbageCollection(blobs, rootfs, freed);
    }

    private static int DeleteFilesExcept(string dir, Func<string, bool> keep, ref long freed)
    {
        if (!Directory.Exists(dir))
        {
            return 0;
        }

        var deleted = 0;
        foreach (var file in new DirectoryInfo(dir).EnumerateFiles())
        {
            if (keep(file.Name))
            {
                continue;
            }

            var size = file.Length;
            file.Delete();
            freed += size;
            deleted++;
        }

        return deleted;
    }
}
