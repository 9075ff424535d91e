using System.Text.Json;

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
        if (LinuxNative.EffectiveUserId != 0)
        {
            // Without root the flattened tree cannot hold other users' files, setuid bits or
            // security xattrs, and the image would silently differ from what was exported.
            throw new ImageStoreException(
                "image import must run as root to keep file ownership, setuid bits and xattrs; run it with sudo");
        }

        Directory.CreateDirectory(Root);
        StagingDirectory.SweepAbandoned(Root);
        using var staging = StagingDirectory.Create(Root);

        var archive = await ArchiveContents.ReadAsync(dockerSaveTar, staging.Sub("archive"), cancellationToken);
        var image = await DockerArchiveReader.SelectAsync(archive, reference, cancellationToken);
        var imageDir = ImageDir(image.Id);
        var prepared = staging.Sub("image");

        // Build outside the lock (it takes a while); publish under it. If the same image appears or
        // vanishes meanwhile (a concurrent import or removal), the second pass settles it.
        for (var attempt = 0; ; attempt++)
        {
            var mustBuild = !IsComplete(imageDir) && !Directory.Exists(prepared);
            if (mustBuild)
            {
                await BuildAsync(image, staging, prepared, cancellationToken);
            }

            cancellationToken.ThrowIfCancellationRequested();
            using (AcquireLock())
            {
                if (!IsComplete(imageDir))
                {
                    if (!Directory.Exists(prepared))
                    {
                        if (attempt > 0)
                        {
                            throw new ImageStoreException($"image {image.Id} kept disappearing while importing; retry");
                        }

                        continue;
                    }

                    if (Directory.Exists(imageDir))
                    {
                        // Not ours and not complete: only a foreign leftover can look like this.
                        Directory.Move(imageDir, staging.Sub("stale"));
                    }

                    Directory.Move(prepared, imageDir);
                }

                var stored = ReadTags();
                var display = reference.DisplayName;
                stored.Tags.TryGetValue(display, out var previous);
                stored.Tags[display] = image.Id;
                WriteTags(stored);
                if (previous is not null && previous != image.Id)
                {
                    RetireIfUnreferenced(stored, previous, staging);
                }

                return TryLoad(display, image.Id)
                    ?? throw new ImageStoreException($"image {image.Id} was stored but cannot be read back from {imageDir}");
            }
        }
    }

    private static async Task BuildAsync(ArchiveImage image, StagingDirectory staging, string prepared, CancellationToken cancellationToken)
    {
        var rootfs = staging.Sub("rootfs");
        Directory.CreateDirectory(rootfs);
        File.SetUnixFileMode(rootfs, (UnixFileMode)0x1ED /* 0755 */);
        var flattener = new LayerFlattener(rootfs);
        foreach (var layer in image.Layers)
        {
            await using var file = new FileStream(layer.File, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: false);
            await using var tar = await LayerStreams.OpenDecompressedAsync(file, layer.Label, leaveOpen: false, cancellationToken);
            await using var hashing = new HashingReadStream(tar);
            await using var complete = new TarEndMarkerStream(hashing); // above the hash: the digest sees only real bytes
            await flattener.ApplyLayerAsync(complete, layer.Label, cancellationToken);
            string diffId;
            try
            {
                diffId = await hashing.DrainAndGetDigestAsync(cancellationToken);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
            {
                throw new ImageFormatException($"{layer.Label}: corrupt or truncated layer ({e.Message})", e);
            }

            if (layer.DiffId is not null && diffId != layer.DiffId)
            {
                throw new ImageFormatException(
                    $"{layer.Label} is corrupt: its uncompressed digest is {diffId}, the image config says {layer.DiffId}");
            }
        }

        flattener.Finish();
        // The archive copy is no longer needed; free the space before mkfs.erofs needs more.
        FileTree.DeleteTree(staging.Sub("archive"));

        var building = staging.Sub("building");
        Directory.CreateDirectory(building);
        var rootfsImage = Path.Combine(building, RootfsFile);
        await ErofsBuilder.BuildAsync(rootfs, rootfsImage, image.Id, flattener.NewestMtimeSeconds, cancellationToken);
        FileTree.DeleteTree(rootfs);

        await File.WriteAllBytesAsync(Path.Combine(building, ConfigFile), image.ConfigBytes, cancellationToken);
        var meta = new StoredImageMetaDto
        {
            Id = image.Id,
            Created = DateTimeOffset.UtcNow,
            SizeBytes = new FileInfo(rootfsImage).Length,
            Source = ImportSource,
        };
        await File.WriteAllBytesAsync(
            Path.Combine(building, MetaFile),
            JsonSerializer.SerializeToUtf8Bytes(meta, ImageJsonContext.Default.StoredImageMetaDto),
            cancellationToken);
        // Read-only from here on: VMs share it, nothing may modify it in place.
        File.SetUnixFileMode(rootfsImage, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Directory.Move(building, prepared);
    }
}
