using Matchlock.Core.Images.Registry;
using Matchlock.Core.Interop;

namespace Matchlock.Core.Images;

public sealed partial class ImageStore
{
    /// <summary>
    /// Imports the image in a <c>docker save</c> tarball (legacy or OCI layout, possibly
    /// gzip-compressed, possibly a non-seekable stream such as stdin; not disposed) under <paramref name="tag"/>.
    /// The layers are flattened and packed as EROFS once per image id; importing the same image
    /// again only moves the tag. Replacing a tag deletes the old image if nothing else names it.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="tag"/> is not a valid image reference.</exception>
    /// <exception cref="ImageFormatException">The archive is corrupt, truncated or unsafe; the store is unchanged.</exception>
    /// <exception cref="ImageStoreException">The host cannot do it (not root, mkfs.erofs missing); the store is unchanged.</exception>
    public async Task<ImageRecord> ImportAsync(string tag, Stream dockerSaveTar, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tag);
        ArgumentNullException.ThrowIfNull(dockerSaveTar);
        var reference = ImageReference.Parse(tag);
        if (reference.Digest is not null)
        {
            throw new ArgumentException(
                $"cannot import under \"{tag}\": a digest names registry content; give a NAME[:TAG] for the imported image", nameof(tag));
        }
        if (LinuxNative.EffectiveUserId != 0)
        {
            // Without root the flattened tree cannot hold other users' files, setuid bits or
            // security xattrs, and the image would silently differ from what was exported.
            throw new ImageStoreException(
                "image import must run as root to keep file ownership, setuid bits and xattrs; run it with sudo");
        }

        using var db = OpenOrCreate();
        StagingDirectory.SweepAbandoned(Root);
        using var gcLock = await AcquireSharedGcLockAsync(null, cancellationToken);
        using var staging = StagingDirectory.Create(Root);

        var archive = await ArchiveContents.ReadAsync(dockerSaveTar, staging.Sub("archive"), cancellationToken);
        var image = await DockerArchiveReader.SelectAsync(archive, reference, cancellationToken);
        var row = new TagRow(reference.DisplayName, image.Id, Digest: null, ImportSource, DateTimeOffset.UtcNow);

        using var imageLock = await AcquireImageLockAsync(image.Id, null, cancellationToken);
        if (!(IsComplete(db, image.Id) && TagStored(db, [row])))
        {
            var built = await BuildAsync(image, staging, cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            var size = new FileInfo(built).Length;
            var imageRow = new ImageRow(image.Id, image.ConfigBytes, PlaceRootfs(built, image.Id), size, DateTimeOffset.UtcNow);
            DeleteRootfsFiles(db.Publish(new PublishPlan(imageRow, [], [row], ReplaceRootfs: true)));
        }

        return Find(row.Name) ?? throw new ImageStoreException($"image {image.Id} was stored but cannot be read back from {Root}");
    }

    private static async Task<string> BuildAsync(ArchiveImage image, StagingDirectory staging, CancellationToken cancellationToken)
    {
        var rootfs = staging.Sub("rootfs");
        Directory.CreateDirectory(rootfs);
        File.SetUnixFileMode(rootfs, (UnixFileMode)0x1ED /* 0755 */);
        var flattener = new LayerFlattener(rootfs);
        foreach (var layer in image.Layers)
        {
            await using var file = new FileStream(layer.File, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: false);
            await ApplyLayerAsync(flattener, file, layer.Label, layer.DiffId, cancellationToken);
        }

        // The archive copy is no longer needed; free the space before mkfs.erofs needs more.
        FileTree.DeleteTree(staging.Sub("archive"));
        return await PackAsync(flattener, rootfs, staging, image.Id, cancellationToken);
    }

    /// <summary>Finishes a flattened tree and packs it as a read-only EROFS file in staging; the tree is deleted.</summary>
    private static async Task<string> PackAsync(
        LayerFlattener flattener, string rootfs, StagingDirectory staging, string imageId, CancellationToken cancellationToken, Action<string, TimeSpan>? timing = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        flattener.Finish();
        var rootfsImage = staging.Sub("rootfs.erofs");
        await ErofsBuilder.BuildAsync(rootfs, rootfsImage, imageId, flattener.NewestMtimeSeconds, cancellationToken);
        timing?.Invoke("mkfs.erofs", watch.Elapsed);
        watch.Restart();
        FileTree.DeleteTree(rootfs);
        timing?.Invoke("delete tree", watch.Elapsed);
        // Read-only from here on: VMs share it, nothing may modify it in place.
        File.SetUnixFileMode(rootfsImage, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return rootfsImage;
    }

    /// <summary>
    /// Decompresses one layer (gzip, zstd or none, by magic bytes), applies it and checks its
    /// uncompressed digest against <paramref name="diffId"/> (the image config's, when known).
    /// </summary>
    internal static async Task ApplyLayerAsync(LayerFlattener flattener, Stream compressed, string label, string? diffId, CancellationToken cancellationToken)
    {
        await using var tar = await LayerStreams.OpenDecompressedAsync(compressed, label, leaveOpen: true, cancellationToken);
        await using var hashing = new HashingReadStream(tar);
        await using var complete = new TarEndMarkerStream(hashing); // above the hash: the digest sees only real bytes
        await flattener.ApplyLayerAsync(complete, label, cancellationToken);
        string actual;
        try
        {
            actual = await hashing.DrainAndGetDigestAsync(cancellationToken);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ZstdSharp.ZstdException)
        {
            throw new ImageFormatException($"{label}: corrupt or truncated layer ({e.Message})", e);
        }

        if (diffId is not null && actual != diffId)
        {
            throw new ImageFormatException(
                $"{label} is corrupt: its uncompressed digest is {actual}, the image config says {diffId}");
        }
    }
}
