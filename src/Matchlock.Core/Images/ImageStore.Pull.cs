using Matchlock.Core.Images.Registry;
using Matchlock.Core.Interop;

namespace Matchlock.Core.Images;

public sealed partial class ImageStore
{
    /// <summary>Layers downloading at once (Docker's default too).</summary>
    private const int ConcurrentDownloads = 3;

    /// <summary>
    /// Pulls <paramref name="reference"/> from its registry into the store and tags it with that
    /// name. Blobs the store already has (layers shared with other images) are not downloaded
    /// again; an image already prepared is only tagged. Layers download concurrently and are
    /// decompressed and applied while they stream. Another process pulling the same image at the
    /// same time is waited for, then its result is used.
    /// </summary>
    /// <exception cref="ArgumentException">The reference or extra tag is not valid.</exception>
    /// <exception cref="RegistryException">The registry refused, lacks the image, or sent bad data; the store is unchanged.</exception>
    /// <exception cref="ImageFormatException">A layer or config is corrupt or unsafe; the store is unchanged.</exception>
    /// <exception cref="ImageStoreException">The host cannot do it (not root, disk full, mkfs.erofs missing); the store is unchanged.</exception>
    public async Task<PullResult> PullAsync(string reference, PullOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        options ??= new PullOptions();
        var parsed = ImageReference.Parse(reference);
        var extra = options.ExtraTag is null ? null : ImageReference.Parse(options.ExtraTag);
        if (extra?.Digest is not null)
        {
            throw new ArgumentException(
                $"cannot tag the image as \"{options.ExtraTag}\": a digest names registry content; give a NAME[:TAG]", nameof(options));
        }

        if (LinuxNative.EffectiveUserId != 0)
        {
            throw new ImageStoreException(
                "pulling images must run as root to keep file ownership, setuid bits and xattrs; run it with sudo");
        }

        var observer = options.Observer ?? new PullObserver();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var client = new RegistryClient(options.Registry);
        var manifest = await client.GetManifestAsync(parsed, options.Platform ?? Platform.Default, cancellationToken);
        observer.Timing("manifest", watch.Elapsed);
        observer.Resolved(parsed, manifest);
        var imageId = manifest.Config.Digest;
        var now = DateTimeOffset.UtcNow;
        var tags = new List<TagRow> { new(parsed.DisplayName, imageId, manifest.RepoDigest, parsed.FullName, now) };
        if (extra is not null)
        {
            tags.Add(new TagRow(extra.DisplayName, imageId, manifest.RepoDigest, parsed.FullName, now));
        }

        using var db = OpenOrCreate();
        if (!options.Force
            && db.Tag(parsed.DisplayName) is { } current
            && current.ImageId == imageId && current.Digest == manifest.RepoDigest
            && IsComplete(db, imageId)
            && (extra is null || TagStored(db, tags.GetRange(1, 1))))
        {
            return new PullResult(Find(parsed.DisplayName)!, manifest.RepoDigest, UpToDate: true);
        }

        StagingDirectory.SweepAbandoned(Root);
        using var gcLock = await AcquireSharedGcLockAsync(observer.Waiting, cancellationToken);
        using var imageLock = await AcquireImageLockAsync(imageId, observer.Waiting, cancellationToken);
        if (!options.Force && IsComplete(db, imageId) && TagStored(db, tags))
        {
            // Prepared earlier under another name, or by the process we just waited for.
            for (var i = 0; i < manifest.Layers.Count; i++)
            {
                observer.Layer(i, LayerState.Cached);
            }
        }
        else
        {
            using var staging = StagingDirectory.Create(Root);
            try
            {
                var (image, blobs) = await BuildPulledAsync(db, client, parsed, manifest, options, observer, staging, cancellationToken);
                cancellationToken.ThrowIfCancellationRequested();
                var placed = PlaceBlobs(blobs);
                var row = image with { RootfsFile = PlaceRootfs(image.RootfsFile, imageId) };
                DeleteRootfsFiles(db.Publish(new PublishPlan(row, placed, tags, ReplaceRootfs: true)));
                observer.Timing("published", watch.Elapsed);
            }
            catch (IOException e) when (e.HResult == NoSpaceHResult || e.Message.Contains("No space left", StringComparison.Ordinal))
            {
                throw new ImageStoreException(
                    $"{parsed.DisplayName}: no space left on the device holding {Root} ({e.Message}); free some space "
                    + "(`matchlock image gc` deletes unused layers) and pull again", e);
            }
            catch (ImageFormatException e)
            {
                throw new ImageFormatException($"{parsed.DisplayName}: {e.Message}", e);
            }
        }

        var record = Find(parsed.DisplayName)
            ?? throw new ImageStoreException($"{parsed.DisplayName} was stored but cannot be read back from {Root}");
        return new PullResult(record, manifest.RepoDigest, UpToDate: false);
    }

    // ENOSPC as .NET reports it in IOException.HResult on Unix (errno 28 in the low bits).
    private const int NoSpaceHResult = 28;

    /// <summary>A blob written to staging and verified, waiting to be moved into <c>blobs/</c>.</summary>
    private sealed record StagedBlob(BlobRow Row, string? StagedPath);

    /// <summary>
    /// Downloads what is missing and builds the root filesystem in staging. Returns the image row
    /// (its RootfsFile is the staged file's path) and every blob the image references.
    /// </summary>
    private async Task<(ImageRow Image, List<StagedBlob> Blobs)> BuildPulledAsync(
        ImageDatabase db,
        RegistryClient client,
        ImageReference reference,
        PulledManifest manifest,
        PullOptions options,
        PullObserver observer,
        StagingDirectory staging,
        CancellationToken cancellationToken)
    {
        var blobs = new List<StagedBlob>();

        // The manifest itself: kept so the image can be re-prepared and inspected without the registry.
        var manifestFile = staging.Sub("manifest");
        await File.WriteAllBytesAsync(manifestFile, manifest.Bytes, cancellationToken);
        blobs.Add(new StagedBlob(new BlobRow(manifest.Digest, manifest.Bytes.Length, manifest.MediaType), manifestFile));

        byte[] configBytes;
        if (!options.Force && HasStoredBlob(db, manifest.Config.Digest))
        {
            configBytes = await File.ReadAllBytesAsync(BlobPath(manifest.Config.Digest), cancellationToken);
            blobs.Add(new StagedBlob(new BlobRow(manifest.Config.Digest, manifest.Config.Size, manifest.Config.MediaType), null));
        }
        else
        {
            configBytes = await client.GetBlobAsync(reference, manifest.Config, cancellationToken);
            var configFile = staging.Sub("config");
            await File.WriteAllBytesAsync(configFile, configBytes, cancellationToken);
            blobs.Add(new StagedBlob(new BlobRow(manifest.Config.Digest, configBytes.Length, manifest.Config.MediaType), configFile));
        }

        var config = ImageConfig.Parse(configBytes);
        if (config.Os is { Length: > 0 } os && os != "linux")
        {
            throw new ImageFormatException($"the image is for {os}, not linux; only Linux images run in matchlock's VMs");
        }

        var platform = options.Platform ?? Platform.Default;
        if (config.Architecture is { Length: > 0 } architecture && !platform.IsMatchedBy(config.Os ?? "linux", architecture, null))
        {
            // A single-platform manifest says nothing about its platform; only the config does.
            throw new ImageFormatException(
                $"the image is for {Platform.Describe(config.Os ?? "linux", architecture, null)}, not the requested {platform}; "
                + $"it would not run in matchlock's VMs (pass --platform {Platform.Describe(config.Os ?? "linux", architecture, null)} to store it anyway)");
        }

        if (config.DiffIds.Count != manifest.Layers.Count)
        {
            throw new ImageFormatException(
                $"the manifest lists {manifest.Layers.Count} layers but the image config has {config.DiffIds.Count} diff ids");
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        // Layers the store already has (shared with other images) are read from it, not downloaded.
        var stored = manifest.Layers.Select(l => !options.Force && HasStoredBlob(db, l.Digest)).ToArray();
        EnsureRoomFor(manifest.Layers.Where((_, i) => !stored[i]).Sum(l => l.Size), reference);
        using var downloadsCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var slots = new SemaphoreSlim(ConcurrentDownloads);
        var downloads = new BlobDownload?[manifest.Layers.Count];
        var downloadTasks = new List<Task>();
        for (var i = 0; i < manifest.Layers.Count; i++)
        {
            var layer = manifest.Layers[i];
            if (stored[i])
            {
                observer.Layer(i, LayerState.Cached);
                blobs.Add(new StagedBlob(new BlobRow(layer.Digest, layer.Size, layer.MediaType), null));
                continue;
            }

            var download = new BlobDownload(staging.Sub($"layer-{i}"));
            downloads[i] = download;
            blobs.Add(new StagedBlob(new BlobRow(layer.Digest, layer.Size, layer.MediaType), download.Path));
            observer.Layer(i, LayerState.Queued);
            downloadTasks.Add(DownloadAsync(i, layer, download));
        }

        async Task DownloadAsync(int index, BlobDescriptor layer, BlobDownload download)
        {
            await slots.WaitAsync(downloadsCts.Token);
            try
            {
                observer.Layer(index, LayerState.Downloading);
                await download.RunAsync(
                    ct => client.OpenBlobAsync(reference, layer, ct),
                    bytes => observer.LayerBytes(index, bytes),
                    downloadsCts.Token);
                observer.Layer(index, LayerState.Downloaded);
            }
            catch
            {
                // One failed download fails the pull: stop the others instead of finishing them.
                await downloadsCts.CancelAsync();
                throw;
            }
            finally
            {
                slots.Release();
            }
        }

        var allDownloads = Task.WhenAll(downloadTasks);
        try
        {
            var rootfs = staging.Sub("rootfs");
            Directory.CreateDirectory(rootfs);
            File.SetUnixFileMode(rootfs, (UnixFileMode)0x1ED /* 0755 */);
            var flattener = new LayerFlattener(rootfs);
            for (var i = 0; i < manifest.Layers.Count; i++)
            {
                var layer = manifest.Layers[i];
                var label = $"layer {i + 1}/{manifest.Layers.Count} ({LayerStreams.Short(layer.Digest)})";
                observer.Layer(i, LayerState.Extracting);
                await using (var source = downloads[i]?.OpenReader()
                    ?? new FileStream(BlobPath(layer.Digest), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: false))
                {
                    await ApplyLayerAsync(flattener, source, label, config.DiffIds[i], downloadsCts.Token);
                }

                observer.Layer(i, LayerState.Done);
            }

            // Every byte was applied, but only a completed download has verified its digest.
            await allDownloads;
            observer.Timing("layers downloaded and applied", watch.Elapsed);
            observer.Packing();
            var packed = await PackAsync(flattener, rootfs, staging, manifest.Config.Digest, cancellationToken, observer.Timing);
            var image = new ImageRow(manifest.Config.Digest, configBytes, packed, new FileInfo(packed).Length, DateTimeOffset.UtcNow);
            return (image, blobs);
        }
        catch (Exception e)
        {
            await downloadsCts.CancelAsync();
            try
            {
                await allDownloads; // all writers closed before staging is deleted
            }
            catch
            {
                // Inspected below.
            }

            // A reader fails (or is cancelled) because its download failed: report the download's cause.
            if (allDownloads.Exception?.InnerExceptions.FirstOrDefault(x => x is not OperationCanceledException) is { } cause
                && cause != e && (e is OperationCanceledException or IOException) && !cancellationToken.IsCancellationRequested)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
            }

            throw;
        }
    }

    /// <summary>
    /// Refuses up front a download that cannot fit (an absurd descriptor size, or a disk too
    /// small), instead of filling the disk first. Only the compressed bytes are counted, so this
    /// never refuses a pull that could succeed.
    /// </summary>
    private void EnsureRoomFor(long downloadBytes, ImageReference reference)
    {
        long available;
        try
        {
            available = new DriveInfo(Root).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // Unknown: let the writes find out.
        }

        if (downloadBytes > available)
        {
            throw new ImageStoreException(
                $"{reference.DisplayName} is too large for this disk: its layers to download total {downloadBytes} bytes "
                + $"({downloadBytes >> 20} MiB, as the manifest says), and only {available >> 20} MiB are free under {Root}; "
                + "free some space (`matchlock image gc` deletes unused layers)");
        }
    }

    /// <summary>Tags an image that is already stored, deleting root filesystems a moved tag left unnamed; false when the image is gone.</summary>
    private bool TagStored(ImageDatabase db, IReadOnlyList<TagRow> tags)
    {
        if (!db.TryTag(tags, out var orphaned))
        {
            return false;
        }

        DeleteRootfsFiles(orphaned);
        return true;
    }

    private bool HasStoredBlob(ImageDatabase db, string digest) => db.HasBlob(digest) && File.Exists(BlobPath(digest));

    /// <summary>Moves staged blobs into <c>blobs/sha256/</c> (keeping an identical copy already there) and returns their rows.</summary>
    private List<BlobRow> PlaceBlobs(List<StagedBlob> blobs)
    {
        foreach (var blob in blobs.Where(b => b.StagedPath is not null))
        {
            var target = BlobPath(blob.Row.Digest);
            if (!File.Exists(target))
            {
                File.SetUnixFileMode(blob.StagedPath!, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
                File.Move(blob.StagedPath!, target, overwrite: true);
            }
        }

        return [.. blobs.Select(b => b.Row).DistinctBy(r => r.Digest)];
    }
}
