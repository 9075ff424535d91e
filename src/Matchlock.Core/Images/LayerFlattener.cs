using System.Formats.Tar;
using Matchlock.Core.Interop;

namespace Matchlock.Core.Images;

/// <summary>
/// Applies image layers, bottom first, into one directory (the OCI image-spec "Applying Changesets"
/// rules): entries replace what lower layers had at the same path (a directory only merges with a
/// directory), <c>.wh.NAME</c> deletes NAME from lower layers, <c>.wh..wh..opq</c> empties its
/// directory of lower-layer content. Ownership, modes (setuid/setgid/sticky), mtimes, xattrs and
/// hard links are kept.
/// </summary>
/// <remarks>
/// Safety is the point of this type. Entry names and hard-link targets that are absolute or
/// contain <c>..</c> are refused, and every parent of a path we touch is checked with lstat and
/// refused when it is a symlink, so no entry can create, replace or delete anything outside the
/// root, whatever earlier entries planted. The lstat-then-act sequence is race-free because the
/// root lives in a 0700 staging directory that only this process writes. Character and block
/// devices are refused (a guest must not get raw device nodes from an image).
/// Xattrs are set with their exact bytes (file capabilities are binary): the layer is read through
/// <see cref="PaxXattrStream"/>, because TarReader alone cannot carry such values.
/// </remarks>
internal sealed partial class LayerFlattener
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    private readonly string _root;

    // Every directory's mtime is set once, at the end: creating children changes it meanwhile.
    private readonly Dictionary<string, DateTimeOffset> _directoryTimes = new(StringComparer.Ordinal);

    // Paths written by the layer being applied: whiteouts and opaque markers only hide lower layers.
    private readonly HashSet<string> _addedByLayer = new(StringComparer.Ordinal);

    private string _layer = "";

    // The layer being applied, read through this: it holds the xattrs TarReader cannot represent.
    private PaxXattrStream? _layerXattrs;

    public LayerFlattener(string root)
    {
        _root = Path.GetFullPath(root);
        if (FileTree.Lstat(_root) != NodeKind.Directory)
        {
            throw new ArgumentException($"flatten root \"{root}\" must be an existing directory", nameof(root));
        }
    }

    /// <summary>Newest mtime of any entry applied, in Unix seconds (0 when none): the erofs build time.</summary>
    public long NewestMtimeSeconds { get; private set; }

    /// <summary>
    /// Applies one uncompressed layer tar. <paramref name="layerLabel"/> (e.g.
    /// <c>layer 2 (sha256:…)</c>) starts every error message.
    /// </summary>
    public async Task ApplyLayerAsync(Stream layerTar, string layerLabel, CancellationToken cancellationToken)
    {
        _layer = layerLabel;
        _addedByLayer.Clear();
        try
        {
            // TarReader cannot hand over binary xattr values; this stream takes them out for it (see there).
            await using var framing = new PaxXattrStream(layerTar, layerLabel);
            _layerXattrs = framing;
            using var reader = new TarReader(framing, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                await ApplyEntryAsync(entry, cancellationToken);
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or OverflowException or ZstdSharp.ZstdException)
        {
            // TarReader and GZipStream report corrupt or truncated input with these; our own file
            // writes never do (they throw IOException / UnauthorizedAccessException).
            throw new ImageFormatException(
                $"{_layer}: corrupt or truncated layer tar ({e.Message}); re-export the image and import again", e);
        }
        finally
        {
            _layerXattrs = null;
        }
    }

    /// <summary>Sets directory mtimes (recorded ones, else the Unix epoch so output is reproducible).</summary>
    public void Finish()
    {
        SetDirectoryTimes(_root, "");
    }

    private async Task ApplyEntryAsync(TarEntry entry, CancellationToken cancellationToken)
    {
        var name = entry.Name;
        var path = FileTree.Normalize(name, out var reason)
            ?? throw Refuse(name, $"{reason}; refusing to import");
        var leaf = path.Length == 0 ? "" : path[(path.LastIndexOf('/') + 1)..];

        if (leaf.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            ApplyWhiteout(name, path, leaf);
            return;
        }

        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
        {
            return;
        }

        var mtime = entry.ModificationTime;
        NewestMtimeSeconds = Math.Max(NewestMtimeSeconds, mtime.ToUnixTimeSeconds());

        if (path.Length == 0)
        {
            // "./": metadata of the image root itself.
            if (entry.EntryType is not TarEntryType.Directory)
            {
                throw Refuse(name, "replaces the image root with a non-directory; refusing to import");
            }

            ApplyMetadata(_root, entry, isSymlink: false);
            _directoryTimes[""] = mtime;
            return;
        }

        var full = PrepareParents(name, path);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (FileTree.Lstat(full) != NodeKind.Directory)
                {
                    FileTree.Remove(full);
                    Directory.CreateDirectory(full);
                }

                ApplyMetadata(full, entry, isSymlink: false);
                _directoryTimes[path] = mtime;
                break;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                FileTree.Remove(full);
                // CreateNew is O_CREAT|O_EXCL: it fails instead of following anything at that name.
                await using (var file = new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: false))
                {
                    if (entry.DataStream is { } data)
                    {
                        await data.CopyToAsync(file, cancellationToken);
                    }
                }

                ApplyMetadata(full, entry, isSymlink: false);
                break;

            case TarEntryType.SymbolicLink:
                // The target is stored verbatim: it is resolved inside the guest, never by us.
                FileTree.Remove(full);
                File.CreateSymbolicLink(full, entry.LinkName);
                ApplyMetadata(full, entry, isSymlink: true);
                break;

            case TarEntryType.HardLink:
                CreateHardLink(name, path, full, entry.LinkName);
                break;

            case TarEntryType.Fifo:
                FileTree.Remove(full);
                LinuxNative.MkFifo(full, 0x180 /* 0600 */);
                ApplyMetadata(full, entry, isSymlink: false);
                break;

            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                throw Refuse(name, $"is a {(entry.EntryType == TarEntryType.BlockDevice ? "block" : "character")} device "
                    + $"{DeviceNumbers(entry)}; device nodes in images are not supported, "
                    + "remove it from the image");

            default:
                throw Refuse(name, $"has unsupported tar entry type {entry.EntryType}");
        }

        _addedByLayer.Add(path);
    }

    private void CreateHardLink(string name, string path, string full, string linkName)
    {
        var target = FileTree.Normalize(linkName, out var reason);
        if (target is null || target.Length == 0)
        {
            throw Refuse(name, $"is a hard link to \"{linkName}\" which {(target is null ? reason : "is the image root")}; refusing to import");
        }

        var targetFull = ResolveExisting(name, target);
        var kind = targetFull is null ? NodeKind.Missing : FileTree.Lstat(targetFull);
        if (kind is NodeKind.Missing or NodeKind.Directory)
        {
            throw Refuse(name, $"is a hard link to \"{linkName}\" which {(kind == NodeKind.Missing ? "does not exist (yet)" : "is a directory")}; "
                + "hard links must point at an earlier non-directory entry");
        }

        if (target == path)
        {
            return;
        }

        FileTree.Remove(full);
        LinuxNative.HardLink(targetFull!, full);
    }

    private void ApplyWhiteout(string name, string path, string leaf)
    {
        if (leaf is ".wh." or ".wh.." or ".wh...")
        {
            throw Refuse(name, "is a whiteout for an invalid name (empty, \".\" or \"..\"); refusing to import");
        }

        var parent = path.Length == leaf.Length ? "" : path[..(path.Length - leaf.Length - 1)];
        var parentFull = parent.Length == 0 ? _root : ResolveExisting(name, parent);
        if (parentFull is null || FileTree.Lstat(parentFull) != NodeKind.Directory)
        {
            // Nothing below to hide (or a non-directory, which has no lower children either).
            if (parentFull is not null && FileTree.Lstat(parentFull) == NodeKind.Symlink)
            {
                throw Refuse(name, $"whites out inside \"{parent}\", which is a symlink; refusing to import");
            }

            return;
        }

        if (leaf == OpaqueMarker)
        {
            ClearLowerContent(parentFull, parent);
            return;
        }

        if (leaf.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal))
        {
            // Other ".wh..wh." names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs); they carry no change.
            return;
        }

        var hidden = leaf[WhiteoutPrefix.Length..];
        var hiddenPath = parent.Length == 0 ? hidden : parent + "/" + hidden;
        if (!_addedByLayer.Contains(hiddenPath))
        {
            FileTree.Remove(Path.Combine(parentFull, hidden));
        }
    }

    /// <summary>Deletes what lower layers put under <paramref name="directory"/>, keeping this layer's entries.</summary>
    private void ClearLowerContent(string directoryFull, string directory)
    {
        foreach (var childFull in Directory.EnumerateFileSystemEntries(directoryFull))
        {
            var child = (directory.Length == 0 ? "" : directory + "/") + Path.GetFileName(childFull);
            if (!_addedByLayer.Contains(child))
            {
                FileTree.Remove(childFull);
            }
            else if (FileTree.Lstat(childFull) == NodeKind.Directory)
            {
                // A directory this layer re-declared still merged with the lower one: clear that too.
                ClearLowerContent(childFull, child);
            }
        }
    }

    /// <summary>
    /// Makes sure every parent of <paramref name="path"/> is a real directory (creating missing
    /// ones) and returns the full path. A parent that is a symlink or a file is refused.
    /// </summary>
    private string PrepareParents(string name, string path)
    {
        var current = _root;
        var parts = path.Split('/');
        for (var i = 0; i < parts.Length - 1; i++)
        {
            current = Path.Combine(current, parts[i]);
            switch (FileTree.Lstat(current))
            {
                case NodeKind.Directory:
                    break;
                case NodeKind.Missing:
                    // Implicit parent (no entry of its own): mode 0755, owned by root, epoch mtime.
                    Directory.CreateDirectory(current);
                    File.SetUnixFileMode(current, (UnixFileMode)0x1ED /* 0755 */);
                    break;
                case NodeKind.Symlink:
                    throw Refuse(name, $"would be written through \"{string.Join('/', parts[..(i + 1)])}\", which is a symlink; refusing to import");
                default:
                    throw Refuse(name, $"needs \"{string.Join('/', parts[..(i + 1)])}\" to be a directory, but it is a file");
            }
        }

        return Path.Combine(current, parts[^1]);
    }

    /// <summary>Full path of an existing <paramref name="path"/>, or null when a parent is missing; symlinked parents are refused.</summary>
    private string? ResolveExisting(string name, string path)
    {
        var current = _root;
        var parts = path.Split('/');
        for (var i = 0; i < parts.Length; i++)
        {
            current = Path.Combine(current, parts[i]);
            if (i == parts.Length - 1)
            {
                break;
            }

            switch (FileTree.Lstat(current))
            {
                case NodeKind.Directory:
                    break;
                case NodeKind.Symlink:
                    throw Refuse(name, $"refers to \"{path}\" through \"{string.Join('/', parts[..(i + 1)])}\", which is a symlink; refusing to import");
                default:
                    return null;
            }
        }

        return current;
    }

    private void SetDirectoryTimes(string full, string path)
    {
        foreach (var child in Directory.EnumerateDirectories(full))
        {
            if (FileTree.Lstat(child) == NodeKind.Directory)
            {
                SetDirectoryTimes(child, (path.Length == 0 ? "" : path + "/") + Path.GetFileName(child));
            }
        }

        LinuxNative.SetTimesNoFollow(full, _directoryTimes.GetValueOrDefault(path, DateTimeOffset.UnixEpoch));
    }

    private static string DeviceNumbers(TarEntry entry) =>
        entry is PosixTarEntry posix ? $" ({posix.DeviceMajor}:{posix.DeviceMinor})" : "";

    private ImageFormatException Refuse(string entryName, string what) =>
        new($"{_layer}: entry \"{entryName}\" {what}");
}
