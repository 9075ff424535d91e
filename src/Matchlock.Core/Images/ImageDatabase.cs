using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Matchlock.Core.Images;

/// <summary>A tag row: local name → image, plus where it came from.</summary>
/// <param name="Name">Display form (<c>busybox:latest</c>, <c>host:5000/app@sha256:…</c>).</param>
/// <param name="Digest">Repository digest the name resolved to at the registry (manifest or index); null for imports.</param>
/// <param name="Source">Full reference it was pulled from, or <c>import</c>.</param>
internal sealed record TagRow(string Name, string ImageId, string? Digest, string Source, DateTimeOffset Updated);

/// <summary>An image row: one flattened root filesystem per image id (config digest).</summary>
/// <param name="RootfsFile">File name under <c>rootfs/</c>; unique per build so a removal never deletes a rebuild's file.</param>
internal sealed record ImageRow(string Id, byte[] Config, string RootfsFile, long RootfsSize, DateTimeOffset Stored);

/// <summary>A blob the store keeps under <c>blobs/sha256/</c>.</summary>
internal sealed record BlobRow(string Digest, long Size, string MediaType);

/// <summary>What <see cref="ImageDatabase.Publish"/> records in one transaction.</summary>
internal sealed record PublishPlan(
    ImageRow Image,
    IReadOnlyList<BlobRow> Blobs,
    IReadOnlyList<TagRow> Tags,
    bool ReplaceRootfs);

/// <summary>
/// The store's metadata in SQLite (WAL): tags, images, blobs and which images reference which
/// blobs (the reference counts <c>image gc</c> works from). Files live beside it; every change of
/// rows happens in one IMMEDIATE transaction, so concurrent processes serialise on SQLite's write
/// lock and readers always see a consistent store.
/// </summary>
internal sealed class ImageDatabase : IDisposable
{
    private readonly SqliteConnection _connection;

    private ImageDatabase(SqliteConnection connection) => _connection = connection;

    public static ImageDatabase Open(string path) =>
        new(SqliteStatements.OpenMigrated(path, [Schema], "the image store", (message, inner) => inner is null ? new ImageStoreException(message) : new ImageStoreException(message, inner)));

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS images (
            id TEXT PRIMARY KEY,
            config BLOB NOT NULL,
            rootfs_file TEXT NOT NULL,
            rootfs_size INTEGER NOT NULL,
            stored TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS blobs (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS image_blobs (
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            digest TEXT NOT NULL REFERENCES blobs(digest),
            PRIMARY KEY (image_id, digest));
        CREATE INDEX IF NOT EXISTS image_blobs_digest ON image_blobs(digest);
        CREATE TABLE IF NOT EXISTS tags (
            name TEXT PRIMARY KEY,
            image_id TEXT NOT NULL REFERENCES images(id),
            digest TEXT,
            source TEXT NOT NULL,
            updated TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
        """;

    public void Dispose() => _connection.Dispose();

    public List<TagRow> Tags()
    {
        using var command = Command("SELECT name, image_id, digest, source, updated FROM tags ORDER BY name");
        return ReadTags(command);
    }

    public TagRow? Tag(string name)
    {
        using var command = Command("SELECT name, image_id, digest, source, updated FROM tags WHERE name = $name", ("$name", name));
        return ReadTags(command).FirstOrDefault();
    }

    public ImageRow? Image(string id)
    {
        using var command = Command("SELECT id, config, rootfs_file, rootfs_size, stored FROM images WHERE id = $id", ("$id", id));
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new ImageRow(reader.GetString(0), (byte[])reader.GetValue(1), reader.GetString(2), reader.GetInt64(3), ParseTime(reader.GetString(4)))
            : null;
    }

    /// <summary>Image ids starting with <paramref name="prefix"/> (<c>sha256:…</c>).</summary>
    public List<string> ImageIdsWithPrefix(string prefix)
    {
        using var command = Command("SELECT id FROM images WHERE substr(id, 1, length($p)) = $p", ("$p", prefix));
        var ids = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    public bool HasBlob(string digest)
    {
        using var command = Command("SELECT 1 FROM blobs WHERE digest = $d", ("$d", digest));
        return command.ExecuteScalar() is not null;
    }

    /// <summary>
    /// Records a built image, its blobs and tags in one transaction. Returns the rootfs file names
    /// no row names any more (a replaced rootfs, images whose last tag moved away): the caller
    /// deletes them after the commit.
    /// </summary>
    public List<string> Publish(PublishPlan plan)
    {
        using var tx = _connection.BeginTransaction();
        var orphaned = new List<string>();
        var existing = ImageInTx(plan.Image.Id, tx);
        if (existing is null)
        {
            Exec(tx, "INSERT INTO images(id, config, rootfs_file, rootfs_size, stored) VALUES ($id, $c, $f, $s, $t)",
                ("$id", plan.Image.Id), ("$c", plan.Image.Config), ("$f", plan.Image.RootfsFile), ("$s", plan.Image.RootfsSize), ("$t", FormatTime(plan.Image.Stored)));
        }
        else if (plan.ReplaceRootfs && existing != plan.Image.RootfsFile)
        {
            Exec(tx, "UPDATE images SET rootfs_file = $f, rootfs_size = $s, stored = $t WHERE id = $id",
                ("$id", plan.Image.Id), ("$f", plan.Image.RootfsFile), ("$s", plan.Image.RootfsSize), ("$t", FormatTime(plan.Image.Stored)));
            orphaned.Add(existing);
        }
        else if (existing != plan.Image.RootfsFile)
        {
            orphaned.Add(plan.Image.RootfsFile); // someone published the same image first; ours is surplus
        }

        foreach (var blob in plan.Blobs)
        {
            Exec(tx, "INSERT OR IGNORE INTO blobs(digest, size, media_type) VALUES ($d, $s, $m)", ("$d", blob.Digest), ("$s", blob.Size), ("$m", blob.MediaType));
            Exec(tx, "INSERT OR IGNORE INTO image_blobs(image_id, digest) VALUES ($i, $d)", ("$i", plan.Image.Id), ("$d", blob.Digest));
        }

        UpsertTags(plan.Tags, tx, orphaned);

        tx.Commit();
        return orphaned;
    }

    /// <summary>Adds tags to an image that is already stored; false when it is not (removed meanwhile).</summary>
    public bool TryTag(IReadOnlyList<TagRow> tags, out List<string> orphaned)
    {
        using var tx = _connection.BeginTransaction();
        orphaned = [];
        if (tags.Select(t => t.ImageId).Distinct(StringComparer.Ordinal).Any(id => ImageInTx(id, tx) is null))
        {
            return false;
        }

        UpsertTags(tags, tx, orphaned);

        tx.Commit();
        return true;
    }

    /// <summary>Deletes tags; images left without a tag go too. Returns their rootfs files, to delete after the commit.</summary>
    public List<string> RemoveTags(IReadOnlyList<string> names)
    {
        using var tx = _connection.BeginTransaction();
        var orphaned = new List<string>();
        var images = new List<string>();
        foreach (var name in names)
        {
            if (TagImageInTx(name, tx) is { } id)
            {
                images.Add(id);
                Exec(tx, "DELETE FROM tags WHERE name = $n", ("$n", name));
            }
        }

        foreach (var id in images.Distinct(StringComparer.Ordinal))
        {
            DeleteImageIfUntagged(id, tx, orphaned);
        }

        tx.Commit();
        return orphaned;
    }

    /// <summary>
    /// Deletes the rows of blobs no image references and returns them, plus every rootfs file name
    /// still referenced (so the caller can delete files nothing names). Caller holds the gc lock.
    /// </summary>
    public (List<BlobRow> Unreferenced, HashSet<string> LiveRootfs, HashSet<string> LiveBlobs) CollectGarbage()
    {
        using var tx = _connection.BeginTransaction();
        var unreferenced = new List<BlobRow>();
        using (var command = Command("SELECT digest, size, media_type FROM blobs WHERE digest NOT IN (SELECT digest FROM image_blobs)", tx))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                unreferenced.Add(new BlobRow(reader.GetString(0), reader.GetInt64(1), reader.GetString(2)));
            }
        }

        Exec(tx, "DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM image_blobs)");
        var rootfs = ReadStrings("SELECT rootfs_file FROM images", tx);
        var blobs = ReadStrings("SELECT digest FROM blobs", tx);
        tx.Commit();
        return (unreferenced, rootfs, blobs);
    }

    /// <summary>Points each tag at its image; images a tag moved away from are deleted when no tag is left on them.</summary>
    private void UpsertTags(IReadOnlyList<TagRow> tags, SqliteTransaction tx, List<string> orphaned)
    {
        var previous = new List<string>();
        foreach (var tag in tags)
        {
            if (TagImageInTx(tag.Name, tx) is { } old && old != tag.ImageId)
            {
                previous.Add(old);
            }

            Exec(tx, "INSERT OR REPLACE INTO tags(name, image_id, digest, source, updated) VALUES ($n, $i, $d, $s, $u)",
                ("$n", tag.Name), ("$i", tag.ImageId), ("$d", tag.Digest), ("$s", tag.Source), ("$u", FormatTime(tag.Updated)));
        }

        foreach (var id in previous.Distinct(StringComparer.Ordinal))
        {
            DeleteImageIfUntagged(id, tx, orphaned);
        }
    }

    private HashSet<string> ReadStrings(string sql, SqliteTransaction tx)
    {
        using var command = Command(sql, tx);
        using var reader = command.ExecuteReader();
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            set.Add(reader.GetString(0));
        }

        return set;
    }

    private void DeleteImageIfUntagged(string id, SqliteTransaction tx, List<string> orphaned)
    {
        using (var count = Command("SELECT count(*) FROM tags WHERE image_id = $i", tx, ("$i", id)))
        {
            if (Convert.ToInt64(count.ExecuteScalar(), CultureInfo.InvariantCulture) > 0)
            {
                return;
            }
        }

        if (ImageInTx(id, tx) is { } file)
        {
            orphaned.Add(file);
        }

        Exec(tx, "DELETE FROM images WHERE id = $i", ("$i", id)); // image_blobs cascade
    }

    private string? ImageInTx(string id, SqliteTransaction tx)
    {
        using var command = Command("SELECT rootfs_file FROM images WHERE id = $i", tx, ("$i", id));
        return command.ExecuteScalar() as string;
    }

    private string? TagImageInTx(string name, SqliteTransaction tx)
    {
        using var command = Command("SELECT image_id FROM tags WHERE name = $n", tx, ("$n", name));
        return command.ExecuteScalar() as string;
    }

    private static List<TagRow> ReadTags(SqliteCommand command)
    {
        var rows = new List<TagRow>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new TagRow(
                reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), ParseTime(reader.GetString(4))));
        }

        return rows;
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters) => Command(sql, null, parameters);

    private SqliteCommand Command(string sql, SqliteTransaction? tx, params (string Name, object? Value)[] parameters) =>
        _connection.Command(sql, tx, parameters);

    private void Exec(SqliteTransaction tx, string sql, params (string Name, object? Value)[] parameters) =>
        _connection.Execute(sql, tx, parameters);

    private static string FormatTime(DateTimeOffset time) => SqliteStatements.FormatTime(time);

    private static DateTimeOffset ParseTime(string text) => SqliteStatements.ParseTime(text);
}
