using System.Formats.Tar;

namespace Matchlock.Core.Images;

/// <summary>
/// The members of an image archive (<c>docker save</c> output), copied out of a possibly
/// non-seekable stream so they can be read in any order. Regular files are stored under numbered
/// names in a scratch directory; member names live only in memory, so a hostile archive cannot
/// place anything on disk by name. Symlinks and hard links between members (skopeo links layer
/// tars to each other) are resolved within the archive and may not leave it.
/// </summary>
internal sealed class ArchiveContents
{
    private const int MaxLinkHops = 40;

    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);

    private ArchiveContents()
    {
    }

    private sealed record Member(TarEntryType Type, string? File, string? LinkName);

    public IEnumerable<string> Names => _members.Keys.Order(StringComparer.Ordinal);

    /// <summary>Copies the archive's members into <paramref name="scratchDirectory"/> (created).</summary>
    public static async Task<ArchiveContents> ReadAsync(Stream archive, string scratchDirectory, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(scratchDirectory);
        var contents = new ArchiveContents();
        var count = 0;
        try
        {
            // `docker save | gzip` is common; accept a compressed outer archive too.
            await using var input = await LayerStreams.OpenDecompressedAsync(archive, "image archive", leaveOpen: true, cancellationToken);
            await using var complete = new TarEndMarkerStream(input);
            using var reader = new TarReader(complete, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                var name = FileTree.Normalize(entry.Name, out var reason)
                    ?? throw new ImageFormatException($"image archive member \"{entry.Name}\" {reason}; refusing to import");
                switch (entry.EntryType)
                {
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        var file = Path.Combine(scratchDirectory, (count++).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        await using (var output = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: false))
                        {
                            if (entry.DataStream is { } data)
                            {
                                await data.CopyToAsync(output, cancellationToken);
                            }
                        }

                        contents._members[name] = new Member(TarEntryType.RegularFile, file, null);
                        break;
                    case TarEntryType.SymbolicLink or TarEntryType.HardLink:
                        contents._members[name] = new Member(entry.EntryType, null, entry.LinkName);
                        break;
                    default:
                        // Directories, PAX globals: nothing to keep.
                        break;
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or OverflowException)
        {
            throw new ImageFormatException(
                $"the image archive is corrupt or truncated ({e.Message}); expected a complete `docker save` tarball", e);
        }

        if (contents._members.Count == 0)
        {
            throw new ImageFormatException("the image archive is empty; expected a `docker save` tarball on stdin");
        }

        return contents;
    }

    public bool Contains(string name) => TryResolve(name, out _, out _);

    /// <summary>The scratch file holding member <paramref name="name"/>, following links inside the archive.</summary>
    public string GetFile(string name, string context)
    {
        return TryResolve(name, out var file, out var error)
            ? file
            : throw new ImageFormatException($"{context}: archive member \"{name}\" {error}");
    }

    public async Task<byte[]> ReadAllBytesAsync(string name, string context, CancellationToken cancellationToken) =>
        await File.ReadAllBytesAsync(GetFile(name, context), cancellationToken);

    private bool TryResolve(string name, out string file, out string error)
    {
        file = "";
        var path = FileTree.Normalize(name, out var reason);
        for (var hop = 0; hop < MaxLinkHops; hop++)
        {
            if (path is null)
            {
                error = reason;
                return false;
            }

            if (!_members.TryGetValue(path, out var member))
            {
                error = "is missing from the archive";
                return false;
            }

            switch (member.Type)
            {
                case TarEntryType.RegularFile:
                    file = member.File!;
                    error = "";
                    return true;
                case TarEntryType.HardLink:
                    // Hard link names are relative to the archive root.
                    path = FileTree.Normalize(member.LinkName!, out reason);
                    break;
                default:
                    // Symlinks are relative to their own directory; "../x" is fine while it stays inside.
                    path = ResolveRelative(path, member.LinkName!, out reason);
                    break;
            }
        }

        error = "is a link loop";
        return false;
    }

    private static string? ResolveRelative(string linkPath, string target, out string reason)
    {
        reason = "";
        if (target.StartsWith('/'))
        {
            reason = "is a symlink with an absolute target";
            return null;
        }

        var parts = new List<string>(linkPath.Split('/')[..^1]);
        foreach (var part in target.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count == 0)
                {
                    reason = "is a symlink pointing outside the archive";
                    return null;
                }

                parts.RemoveAt(parts.Count - 1);
                continue;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }
}
