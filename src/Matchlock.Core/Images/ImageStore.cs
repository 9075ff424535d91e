using Matchlock.Core.Images.Registry;
using Matchlock.Core.Interop;

namespace Matchlock.Core.Images;

/// <summary>
/// The local image store: tagged images, each a flattened read-only EROFS root filesystem plus its
/// config (docs/ARCHITECTURE.md D5), and the registry blobs they came from, stored once by digest.
/// </summary>
/// <remarks>
/// Layout under <see cref="Root"/>:
/// <code>
/// store.db                 SQLite (WAL): tags, images, blobs, image→blob references
/// blobs/sha256/&lt;hex&gt;       compressed layers, configs and manifests by digest, shared by images
/// rootfs/&lt;hex&gt;-&lt;n&gt;.erofs   an image's root filesystem, shared read-only by every VM of it
/// locks/&lt;hex&gt;.lock         held while one process prepares that image (others wait for it)
/// gc.lock                  shared by pulls and imports, exclusive for <c>image gc</c>
/// .tmp-&lt;random&gt;/          staging of a pull or import in progress (swept once its owner is dead)
/// </code>
/// Files are written under staging, verified, then renamed into place, and only then recorded in
/// one transaction; a row therefore always names a complete file, and a crash at any point leaves
/// at worst files no row names, which the next gc deletes. Rootfs file names are unique per build
/// so removing an image can never delete a concurrent rebuild of it.
/// </remarks>
public sealed partial class ImageStore
{
    private const string DatabaseFile = "store.db";
    private const string BlobsDir = "blobs/sha256";
    private const string RootfsDir = "rootfs";
    private const string LocksDir = "locks";
    private const string GcLockFile = "gc.lock";
    private const string ImportSource = "import";

    /// <summary>Store at <see cref="MatchlockPaths.ImagesDir"/>.</summary>
    public ImageStore()
        : this(MatchlockPaths.ImagesDir)
    {
    }

    public ImageStore(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>All tagged images, one record per tag, ordered by tag.</summary>
    public IReadOnlyList<ImageRecord> List()
    {
        using var db = OpenExisting();
        if (db is null)
        {
            return [];
        }

        var records = new List<ImageRecord>();
        foreach (var tag in db.Tags())
        {
            if (Load(db, tag) is { } record)
            {
                records.Add(record);
            }
        }

        return records;
    }

    /// <summary>
    /// Looks an image up by tag (<c>busybox</c>, <c>busybox:latest</c>,
    /// <c>docker.io/library/busybox</c> are the same), by repository digest
    /// (<c>name@sha256:…</c>) or by id (<c>sha256:…</c> or a unique hex prefix of at least 12
    /// digits). Null when nothing matches.
    /// </summary>
    public ImageRecord? Find(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        using var db = OpenExisting();
        if (db is null)
        {
            return null;
        }

        var matching = MatchTags(db, reference);
        return matching.Count == 0 ? null : Load(db, matching[0]);
    }

    /// <summary>Like <see cref="Find"/>, but throws <see cref="ImageNotFoundException"/> listing the images that exist.</summary>
    public ImageRecord Resolve(string reference) =>
        Find(reference) ?? throw new ImageNotFoundException(reference, [.. List().Select(r => r.Tag)]);

    /// <summary>
    /// Removes a tag (or, given an id, every tag of that image); the image's root filesystem is
    /// deleted once no tag names it, its blobs stay until <see cref="CollectGarbageAsync"/>.
    /// False when nothing matched. VMs already running keep their open image.
    /// </summary>
    public bool Remove(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        using var db = OpenExisting();
        if (db is null)
        {
            return false;
        }

        var matching = MatchTags(db, reference);
        if (matching.Count == 0)
        {
            return false;
        }

        DeleteRootfsFiles(db.RemoveTags([.. matching.Select(t => t.Name)]));
        return true;
    }

    private static List<TagRow> MatchTags(ImageDatabase db, string reference)
    {
        if (ImageReference.TryParse(reference, out var parsed))
        {
            if (db.Tag(parsed.DisplayName) is { } exact)
            {
                return [exact];
            }

            if (parsed.Digest is { } digest)
            {
                // Pulled by tag, asked for by digest: any tag of that repository resolved to it.
                var repository = RepositoryOf(parsed.DisplayName);
                return [.. db.Tags().Where(t => t.Digest == digest && RepositoryOf(t.Name) == repository).Take(1)];
            }
        }

        var hex = reference.StartsWith("sha256:", StringComparison.Ordinal) ? reference["sha256:".Length..] : reference;
        if (hex.Length < 12 || hex.Length > 64 || hex.AsSpan().IndexOfAnyExcept("0123456789abcdef") >= 0)
        {
            return [];
        }

        var ids = db.ImageIdsWithPrefix("sha256:" + hex);
        // An ambiguous prefix matches nothing rather than an arbitrary image.
        return ids.Count == 1 ? [.. db.Tags().Where(t => t.ImageId == ids[0])] : [];
    }

    private static string RepositoryOf(string tagName)
    {
        var at = tagName.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            return tagName[..at];
        }

        var colon = tagName.LastIndexOf(':');
        return colon > tagName.LastIndexOf('/') ? tagName[..colon] : tagName;
    }

    private ImageRecord? Load(ImageDatabase db, TagRow tag)
    {
        if (db.Image(tag.ImageId) is not { } image)
        {
            return null;
        }

        return new ImageRecord(
            tag.Name, image.Id, RootfsPath(image.RootfsFile), ImageConfig.Parse(image.Config), image.RootfsSize, image.Stored, tag.Source, tag.Digest);
    }

    private string DatabasePath => Path.Combine(Root, DatabaseFile);

    private string RootfsPath(string file) => Path.Combine(Root, RootfsDir, file);

    private string BlobPath(string digest) => Path.Combine(Root, BlobsDir, Hex(digest));

    private string ImageLockPath(string id) => Path.Combine(Root, LocksDir, Hex(id) + ".lock");

    private static string Hex(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest["sha256:".Length..] : digest;

    /// <summary>Opens the database, creating the store; for operations that write.</summary>
    private ImageDatabase OpenOrCreate()
    {
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Path.Combine(Root, BlobsDir));
        Directory.CreateDirectory(Path.Combine(Root, RootfsDir));
        return ImageDatabase.Open(DatabasePath);
    }

    /// <summary>Opens the database when the store exists; null for a store never written to (reads create nothing).</summary>
    private ImageDatabase? OpenExisting() => File.Exists(DatabasePath) ? ImageDatabase.Open(DatabasePath) : null;

    /// <summary>Takes the store's gc lock shared: what a pull or import holds, so gc never deletes what it is about to reference.</summary>
    private Task<FileLock> AcquireSharedGcLockAsync(Action<string>? onWait, CancellationToken cancellationToken) =>
        FileLock.AcquireAsync(
            Path.Combine(Root, GcLockFile),
            exclusive: false,
            () => onWait?.Invoke("waiting for `matchlock image gc` to finish"),
            cancellationToken);

    /// <summary>Takes the per-image lock: one process prepares an image, the others wait and then find it ready.</summary>
    private Task<FileLock> AcquireImageLockAsync(string imageId, Action<string>? onWait, CancellationToken cancellationToken) =>
        FileLock.AcquireAsync(
            ImageLockPath(imageId),
            exclusive: true,
            () => onWait?.Invoke($"waiting for another matchlock process preparing image {LayerStreams.Short(imageId)}"),
            cancellationToken);

    /// <summary>True when the image is recorded and its root filesystem file is there.</summary>
    private bool IsComplete(ImageDatabase db, string imageId) =>
        db.Image(imageId) is { } image && File.Exists(RootfsPath(image.RootfsFile));

    private void DeleteRootfsFiles(IEnumerable<string> files)
    {
        foreach (var file in files)
        {
            try
            {
                File.Delete(RootfsPath(file));
            }
            catch (IOException)
            {
                // Left for gc, which deletes rootfs files no row names.
            }
        }
    }

    /// <summary>Moves a finished rootfs image into <c>rootfs/</c> under a fresh unique name and returns that name.</summary>
    private string PlaceRootfs(string builtFile, string imageId)
    {
        var name = $"{Hex(imageId)}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}.erofs";
        File.Move(builtFile, RootfsPath(name));
        return name;
    }
}
