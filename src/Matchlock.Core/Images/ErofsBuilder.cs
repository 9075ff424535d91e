using System.Globalization;

namespace Matchlock.Core.Images;

/// <summary>
/// Packs a flattened root directory into an uncompressed EROFS image with <c>mkfs.erofs</c>
/// (erofs-utils; docs/ARCHITECTURE.md D5). erofs-utils 1.5 has no <c>--tar</c>, so the input is a directory
/// whose ownership, modes, xattrs, hard links and mtimes are already exactly the image's.
/// </summary>
internal static class ErofsBuilder
{
    public const string Program = "mkfs.erofs";

    /// <param name="sourceDirectory">Flattened root.</param>
    /// <param name="outputFile">Image file to create.</param>
    /// <param name="imageId"><c>sha256:…</c>; the filesystem UUID is derived from it.</param>
    /// <param name="buildTimeSeconds">Newest mtime in the tree (Unix seconds); recorded as the build time.</param>
    public static async Task BuildAsync(
        string sourceDirectory, string outputFile, string imageId, long buildTimeSeconds, CancellationToken cancellationToken)
    {
        // Reproducible *and* faithful: erofs-utils 1.5 treats SOURCE_DATE_EPOCH as a clamp (mtimes
        // newer than it are lowered) and as the superblock build time. Setting it to the newest
        // mtime in the tree clamps nothing and makes the build time, hence the whole image,
        // a function of the image content. `--preserve-mtime` stores every inode's own mtime;
        // `-T0` would be reproducible too but would erase mtimes (make, rsync and caches in the
        // guest rely on them). -U pins the otherwise random UUID. No -z: uncompressed, so guest
        // reads are plain block reads shared through the host page cache by every VM.
        var hex = imageId.StartsWith("sha256:", StringComparison.Ordinal) ? imageId["sha256:".Length..] : imageId;
        var uuid = $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..32]}";
        var environment = new Dictionary<string, string>
        {
            ["SOURCE_DATE_EPOCH"] = Math.Max(0, buildTimeSeconds).ToString(CultureInfo.InvariantCulture),
        };

        ProcessResult result;
        try
        {
            result = await ProcessRunner.RunAsync(
                Program,
                ["--quiet", "-U", uuid, "--preserve-mtime", outputFile, sourceDirectory],
                environment,
                cancellationToken);
        }
        catch (FileNotFoundException e)
        {
            throw new ImageStoreException(
                $"{Program} not found; it packs images for the VMs. Run ./setup.sh (installs erofs-utils) "
                + "or `apt-get install erofs-utils`", e);
        }

        if (result.ExitCode != 0)
        {
            var detail = (result.StandardError + result.StandardOutput).Trim();
            throw new ImageStoreException(
                $"{Program} failed with exit code {result.ExitCode}: {(detail.Length == 0 ? "no output" : detail)}");
        }
    }
}
