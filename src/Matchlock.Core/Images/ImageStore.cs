using System.Text.Json;

namespace Matchlock.Core.Images;

/// <summary>
/// The local image store: tagged images, each a flattened read-only EROFS root filesystem plus its
/// config (DESIGN.md D5).
/// </summary>
/// <remarks>
/// Layout under <see cref="Root"/>:
/// <code>
/// tags.json                  display tag → image id (sha256 of the config blob)
/// store.lock                 flock held while tags.json or image directories change
/// &lt;hex id&gt;/rootfs.erofs      the image, built once, shared read-only by every VM
/// &lt;hex id&gt;/config.json       the image config blob, byte for byte (its digest is the id)
/// &lt;hex id&gt;/meta.json         id, import time, size, source
/// .tmp-&lt;random&gt;/            staging of an import or removal in progress (deleted on exit)
/// </code>
/// Every change is prepared aside and published by rename, so readers never see half an image and
/// need no lock. An image directory is deleted when the last tag naming it goes.
/// A later issue moves the metadata to SQLite; callers only see this class.
/// </remarks>
public sealed partial class ImageStore
{
    private const string TagsFile = "tags.json";
    private const string LockFile = "store.lock";
    private const string RootfsFile = "rootfs.erofs";
    private const string ConfigFile = "config.json";
    private const string MetaFile = "meta.json";
    private const string ImportSource = "import";
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(60);

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
        var records = new List<ImageRecord>();
        foreach (var (tag, id) in ReadTags().Tags)
        {
            if (TryLoad(tag, id) is { } record)
            {
                records.Add(record);
            }
        }

        return records;
    }

    /// <summary>
    /// Looks an image up by tag (<c>busybox</c>, <c>busybox:latest</c>,
    /// <c>docker.io/library/busybox</c> are the same) or by id (<c>sha256:…</c> or a unique hex
    /// prefix of at least 12 digits). Null when nothing matches.
    /// </summary>
    public ImageRecord? Find(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var tags = ReadTags().Tags;
        var matching = MatchTags(tags, reference);
        return matching.Count == 0 ? null : TryLoad(matching[0], tags[matching[0]]);
    }

    /// <summary>Like <see cref="Find"/>, but throws <see cref="ImageNotFoundException"/> listing the images that exist.</summary>
    public ImageRecord Resolve(string reference) =>
        Find(reference) ?? throw new ImageNotFoundException(reference, [.. List().Select(r => r.Tag)]);

    /// <summary>
    /// Removes a tag (or, given an id, every tag of that image); the image itself is deleted once
    /// no tag names it. False when nothing matched. VMs already running keep their open image.
    /// </summary>
    public bool Remove(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (!Directory.Exists(Root))
        {
            return false;
        }

        using var staging = StagingDirectory.Create(Root);
        using (AcquireLock())
        {
            var stored = ReadTags();
            var matching = MatchTags(stored.Tags, reference);
            if (matching.Count == 0)
            {
                return false;
            }

            var ids = matching.Select(t => stored.Tags[t]).Distinct(StringComparer.Ordinal).ToList();
            foreach (var tag in matching)
            {
                stored.Tags.Remove(tag);
            }

            WriteTags(stored);
            foreach (var id in ids)
            {
                RetireIfUnreferenced(stored, id, staging);
            }
        }

        // The retired directories are deleted with the staging directory, outside the lock.
        return true;
    }

    private static List<string> MatchTags(SortedDictionary<string, string> tags, string reference)
    {
        if (ImageReference.TryParse(reference, out var parsed) && tags.ContainsKey(parsed.DisplayName))
        {
            return [parsed.DisplayName];
        }

        var hex = reference.StartsWith("sha256:", StringComparison.Ordinal) ? reference["sha256:".Length..] : reference;
        if (hex.Length < 12 || hex.Length > 64 || hex.AsSpan().IndexOfAnyExcept("0123456789abcdef") >= 0)
        {
            return [];
        }

        var ids = tags.Values.Where(id => id.StartsWith("sha256:" + hex, StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal).ToList();
        // An ambiguous prefix matches nothing rather than an arbitrary image.
        return ids.Count == 1 ? [.. tags.Where(kv => kv.Value == ids[0]).Select(kv => kv.Key)] : [];
    }

    private ImageRecord? TryLoad(string tag, string id)
    {
        var dir = ImageDir(id);
        byte[] meta, config;
        try
        {
            meta = File.ReadAllBytes(Path.Combine(dir, MetaFile));
            config = File.ReadAllBytes(Path.Combine(dir, ConfigFile));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null; // Removed by another process since we read tags.json.
        }

        StoredImageMetaDto? dto;
        try
        {
            dto = JsonSerializer.Deserialize(meta, ImageJsonContext.Default.StoredImageMetaDto);
        }
        catch (JsonException e)
        {
            throw new ImageStoreException($"{Path.Combine(dir, MetaFile)} is corrupt ({e.Message}); remove the tag \"{tag}\" and import again", e);
        }

        return dto is null
            ? null
            : new ImageRecord(tag, id, Path.Combine(dir, RootfsFile), ImageConfig.Parse(config), dto.SizeBytes, dto.Created, dto.Source);
    }

    /// <summary>Moves an image no tag names any more into <paramref name="staging"/>, to be deleted with it. Caller holds the lock.</summary>
    private void RetireIfUnreferenced(StoredTagsDto stored, string id, StagingDirectory staging)
    {
        var dir = ImageDir(id);
        if (!stored.Tags.ContainsValue(id) && Directory.Exists(dir))
        {
            Directory.Move(dir, staging.Sub("retired-" + Path.GetFileName(dir)));
        }
    }

    private string ImageDir(string id) =>
        Path.Combine(Root, id.StartsWith("sha256:", StringComparison.Ordinal) ? id["sha256:".Length..] : id);

    private static bool IsComplete(string imageDir) =>
        File.Exists(Path.Combine(imageDir, RootfsFile))
        && File.Exists(Path.Combine(imageDir, ConfigFile))
        && File.Exists(Path.Combine(imageDir, MetaFile));

    private StoredTagsDto ReadTags()
    {
        var path = Path.Combine(Root, TagsFile);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return new StoredTagsDto();
        }

        try
        {
            var dto = JsonSerializer.Deserialize(bytes, ImageJsonContext.Default.StoredTagsDto) ?? new StoredTagsDto();
            // Deserialisation builds the dictionary without our comparer; keep ordering ordinal.
            dto.Tags = new SortedDictionary<string, string>(dto.Tags, StringComparer.Ordinal);
            return dto;
        }
        catch (JsonException e)
        {
            throw new ImageStoreException($"{path} is corrupt ({e.Message}); restore it or delete it and re-import the images", e);
        }
    }

    /// <summary>Writes tags.json atomically (temp file, fsync, rename). Caller holds the lock.</summary>
    private void WriteTags(StoredTagsDto tags)
    {
        var path = Path.Combine(Root, TagsFile);
        var temp = path + ".tmp-" + Environment.ProcessId;
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, tags, ImageJsonContext.Default.StoredTagsDto);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Takes the store lock (guards tags.json and the image directories). flock via FileShare.None
    /// is released by the kernel if the process dies, so a crash never wedges the store.
    /// </summary>
    private FileStream AcquireLock()
    {
        var path = Path.Combine(Root, LockFile);
        var deadline = DateTime.UtcNow + LockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline && File.Exists(path))
            {
                Thread.Sleep(50);
            }
            catch (IOException e) when (File.Exists(path))
            {
                throw new ImageStoreException(
                    $"the image store {Root} stayed locked for {LockTimeout.TotalSeconds:0}s by another matchlock process; "
                    + "wait for it to finish and retry", e);
            }
        }
    }
}
