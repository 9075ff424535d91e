using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Matchlock.Core.Images;
using Matchlock.Core.Interop;

namespace Matchlock.Core.Volumes;

/// <summary>
/// Named volumes: ext4 images <c>NAME.ext4</c> in one directory (<see cref="MatchlockPaths.VolumesDir"/>),
/// attached to sandboxes with <c>--disk @NAME:/guest/path</c>, and outliving every sandbox.
/// </summary>
/// <remarks>
/// <para>Concurrency is arbitrated by flock(2) on the image itself: a sandbox holds an exclusive
/// lock for a writable attach and a shared one for <c>:ro</c>, for as long as it runs (the kernel
/// drops it when the owner dies, so a crash never wedges a volume). <see cref="Remove"/> takes the
/// exclusive lock and <see cref="CopyAsync"/> a shared one on its source, so neither can touch a
/// volume a sandbox writes (a copy of a live ext4 would be torn).</para>
/// <para>A volume appears whole or not at all: it is built under a hidden temporary name in the
/// same directory (<c>.NAME.XXXXXXXX.tmp</c>, which is never a valid volume name), then renamed
/// into place with <c>RENAME_NOREPLACE</c>, so an existing volume is never overwritten. The
/// builder holds the temporary file's exclusive lock; a temporary nobody holds was left by a
/// killed process and is deleted by the next create or copy.</para>
/// </remarks>
public sealed partial class VolumeStore
{
    /// <summary>The original's default size for <c>volume create</c>, in MB.</summary>
    public const int DefaultSizeMb = 10240;

    /// <summary>Bounds for <c>--size</c> (as for <c>--disk-size</c>): mkfs.ext4 needs a few MB; 16 TiB is ext4's practical limit with 4k blocks.</summary>
    public const long MinSizeMb = 16;
    public const long MaxSizeMb = 16L * 1024 * 1024;

    private const string Extension = ".ext4";
    private const int MaxNameLength = 128;

    public VolumeStore(string? directory = null)
    {
        Directory = directory ?? MatchlockPaths.VolumesDir;
    }

    /// <summary>Where the images live.</summary>
    public string Directory { get; }

    /// <summary>The original's rule (<c>^[a-zA-Z0-9][a-zA-Z0-9_.-]*$</c>, with <c>$</c> meaning the end: no trailing newline), plus a length bound so <c>NAME.ext4</c> and its temporary names fit in a file name.</summary>
    public static bool IsValidName(string name) => name.Length <= MaxNameLength && NamePattern().IsMatch(name);

    /// <exception cref="VolumeException">The name breaks <see cref="IsValidName"/>.</exception>
    public static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!IsValidName(name))
        {
            throw new VolumeException(
                $"invalid volume name \"{name}\": use letters, digits, '_', '.' and '-', starting with a letter or digit (at most {MaxNameLength} characters)");
        }
    }

    /// <summary>The image a volume name maps to, whether or not it exists.</summary>
    public string PathOf(string name)
    {
        ValidateName(name);
        return Path.Combine(Directory, name + Extension);
    }

    /// <summary>The volume, or null when there is none of that name.</summary>
    public VolumeInfo? Find(string name)
    {
        var path = PathOf(name);
        try
        {
            var id = FileIdentity.Of(path);
            return File.GetAttributes(path).HasFlag(FileAttributes.Directory) ? null : new VolumeInfo(name, path, id.Size, id.AllocatedBytes);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The volume; throws a message listing the ones that exist when there is none.</summary>
    /// <exception cref="VolumeException">No such volume.</exception>
    public VolumeInfo Get(string name) => Find(name) ?? throw NotFound(name);

    /// <summary>Every volume, by name.</summary>
    public IReadOnlyList<VolumeInfo> List()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return [];
        }

        var volumes = new List<VolumeInfo>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*" + Extension))
        {
            var name = Path.GetFileName(path)[..^Extension.Length];
            if (IsValidName(name) && Find(name) is { } volume)
            {
                volumes.Add(volume);
            }
        }

        volumes.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return volumes;
    }

    /// <summary>Creates an empty ext4 volume of <paramref name="sizeMb"/> MB (a sparse file: it costs what is written).</summary>
    /// <exception cref="VolumeException">Bad name or size, the volume exists, or formatting failed; nothing was created.</exception>
    public async Task<VolumeInfo> CreateAsync(string name, long sizeMb = DefaultSizeMb, CancellationToken cancellationToken = default)
    {
        var path = PathOf(name);
        if (sizeMb is < MinSizeMb or > MaxSizeMb)
        {
            throw new VolumeException($"--size must be between {MinSizeMb} and {MaxSizeMb} MB; got {sizeMb}");
        }

        EnsureDirectory();
        SweepAbandonedTemporaries();
        ThrowIfExists(name, path);
        await BuildAsync(name, path, (handle, temporary, ct) => Ext4Image.FormatAsync(handle, temporary, sizeMb, ct), cancellationToken);
        return Get(name);
    }

    /// <summary>Deletes a volume and everything on it.</summary>
    /// <exception cref="VolumeException">No such volume, or a sandbox has it attached.</exception>
    public void Remove(string name)
    {
        var path = PathOf(name);
        FileLock? held;
        try
        {
            held = FileLock.TryAcquireExisting(path, exclusive: true, writable: false);
        }
        catch (FileNotFoundException)
        {
            throw NotFound(name);
        }

        using var _ = held ?? throw InUse(name);
        // Deleting under the lock: a sandbox that opened the file before the unlink notices, after
        // its own flock, that the name no longer leads to it (see the sandbox's attach).
        File.Delete(path);
    }

    /// <summary>
    /// Copies an image, sparse-preserving (holes stay holes; reflinked where the filesystem can).
    /// Each side is a volume name, or a host path when it contains a '/' (<c>./disk.ext4</c>):
    /// volume → new volume, host file → new volume (import), volume → host file (export; an
    /// existing directory receives <c>NAME.ext4</c>). The destination must not exist.
    /// </summary>
    /// <returns>The new volume, or null when the destination is a host file.</returns>
    /// <exception cref="VolumeException">Bad names, missing source, existing destination, a source a sandbox writes, or the copy failed; nothing was created.</exception>
    public async Task<(string Destination, VolumeInfo? Volume)> CopyAsync(string source, string destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var sourceIsHost = IsHostPath(source);
        var destinationIsHost = IsHostPath(destination);
        if (sourceIsHost && destinationIsHost)
        {
            throw new VolumeException("volume cp needs a volume on at least one side (a name, without '/'); to copy between host files use cp --sparse=always");
        }

        string sourcePath;
        string sourceWhat;
        if (sourceIsHost)
        {
            sourcePath = Path.GetFullPath(source);
            sourceWhat = sourcePath;
        }
        else
        {
            sourcePath = PathOf(source);
            sourceWhat = $"volume \"{source}\"";
        }

        string destinationPath;
        string? destinationName = null;
        if (destinationIsHost)
        {
            destinationPath = Path.GetFullPath(destination);
            if (System.IO.Directory.Exists(destinationPath))
            {
                destinationPath = Path.Combine(destinationPath, Path.GetFileName(sourcePath));
            }
            else if (!System.IO.Directory.Exists(Path.GetDirectoryName(destinationPath)))
            {
                throw new VolumeException($"cannot copy to {destinationPath}: its directory does not exist");
            }

            if (Path.Exists(destinationPath))
            {
                throw new VolumeException($"{destinationPath} already exists; volume cp never overwrites (remove it first, or pick another name)");
            }
        }
        else
        {
            destinationName = destination;
            destinationPath = PathOf(destination);
            EnsureDirectory();
            SweepAbandonedTemporaries();
            ThrowIfExists(destination, destinationPath);
        }

        // Before opening: open(2) on a FIFO would block, and a directory or device is never an image.
        if (Path.Exists(sourcePath) && !FileIdentity.Of(sourcePath).IsRegularFile)
        {
            throw new VolumeException($"{sourcePath} is not a regular file; volume cp copies ext4 image files");
        }

        FileLock? held;
        try
        {
            held = FileLock.TryAcquireExisting(sourcePath, exclusive: false, writable: false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw sourceIsHost ? new VolumeException($"{sourcePath} does not exist") : NotFound(source);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new VolumeException(ex.Message, ex);
        }

        using (held ?? throw (sourceIsHost ? new VolumeException($"{sourcePath} is attached writable to a running sandbox; stop it first, then copy") : InUse(source)))
        {
            if (!FileIdentity.Of(held.Handle).IsRegularFile)
            {
                throw new VolumeException($"{sourcePath} is not a regular file; volume cp copies ext4 image files");
            }

            if (!Ext4Image.HasSuperblock(held.Handle))
            {
                throw new VolumeException($"{sourceWhat} ({sourcePath}) is not an ext4 filesystem image (no ext2/3/4 superblock)");
            }

            await BuildAsync(destinationName ?? Path.GetFileName(destinationPath), destinationPath, async (_, temporary, ct) =>
            {
                // cp(1) rather than our own loop: it finds holes with SEEK_DATA/SEEK_HOLE (and
                // reflinks on btrfs/XFS), and --sparse=auto keeps them without scanning the data.
                ProcessResult result;
                try
                {
                    result = await ProcessRunner.RunAsync("cp", ["--sparse=auto", "--reflink=auto", "--", sourcePath, temporary], environment: null, ct);
                }
                catch (FileNotFoundException ex)
                {
                    throw new VolumeException("cp was not found on the PATH (coreutils)", ex);
                }

                if (result.ExitCode != 0)
                {
                    throw new VolumeException($"copying {sourceWhat} failed (cp exit {result.ExitCode}): {result.StandardError.Trim()}");
                }
            }, cancellationToken);
        }

        return (destinationPath, destinationName is null ? null : Get(destinationName));
    }

    /// <summary>A <c>volume cp</c> argument is a host path when it contains a '/' (a volume name never does).</summary>
    public static bool IsHostPath(string argument) => argument.Contains('/', StringComparison.Ordinal);

    /// <summary>Builds <paramref name="path"/> under a locked temporary name next to it, then renames it into place without replacing anything.</summary>
    private static async Task BuildAsync(string name, string path, Func<Microsoft.Win32.SafeHandles.SafeFileHandle, string, CancellationToken, Task> build, CancellationToken cancellationToken)
    {
        var temporary = Path.Combine(Path.GetDirectoryName(path)!, $".{name}.{Guid.NewGuid().ToString("N")[..8]}.tmp");
        using var building = FileLock.TryAcquire(temporary, exclusive: true)
            ?? throw new VolumeException($"cannot lock the temporary file {temporary}");
        try
        {
            await build(building.Handle, temporary, cancellationToken);
            if (renameat2(AtFdCwd, temporary, AtFdCwd, path, RenameNoReplace) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw errno == EExist
                    ? new VolumeException($"{path} appeared while it was being created (another matchlock made it); nothing was overwritten")
                    : new VolumeException($"cannot rename {temporary} to {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Deletes temporaries whose builder is gone (its lock died with it); leaves the ones being built.</summary>
    internal void SweepAbandonedTemporaries()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return;
        }

        foreach (var temporary in System.IO.Directory.EnumerateFiles(Directory, ".*.tmp"))
        {
            try
            {
                using var abandoned = FileLock.TryAcquireExisting(temporary, exclusive: true, writable: false);
                if (abandoned is not null)
                {
                    File.Delete(temporary);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile (another sweep), or not ours to delete: not this command's business.
            }
        }
    }

    private void EnsureDirectory() =>
        // 0700: volumes hold whatever sandboxes wrote, which is nobody else's business.
        System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    private static void ThrowIfExists(string name, string path)
    {
        if (Path.Exists(path))
        {
            throw new VolumeException($"named volume already exists: \"{name}\" ({path}); remove it first with `matchlock volume rm {name}`, or pick another name");
        }
    }

    private VolumeException NotFound(string name)
    {
        var known = List().Select(v => v.Name).ToList();
        return new VolumeException(
            $"named volume not found: \"{name}\"; create it with `matchlock volume create {name}` "
            + (known.Count == 0 ? "(there are no volumes yet)" : $"(volumes: {string.Join(", ", known.Take(10))}{(known.Count > 10 ? ", …" : "")})"));
    }

    internal static VolumeException InUse(string name) =>
        new($"volume \"{name}\" is in use by another sandbox (or a `volume cp`); stop it first (`matchlock ls --running` lists the running ones)");

    [GeneratedRegex(@"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\z")]
    private static partial Regex NamePattern();

    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1;
    private const int EExist = 17;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);
}
