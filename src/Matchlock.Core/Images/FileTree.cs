namespace Matchlock.Core.Images;

/// <summary>What <c>lstat</c> says a path is (symlinks are never followed).</summary>
internal enum NodeKind
{
    Missing,
    Directory,
    Symlink,
    Other,
}

/// <summary>
/// Path normalisation for archive names and no-follow file-tree helpers. None of these follow a
/// symlink: a symlink is reported as <see cref="NodeKind.Symlink"/> and deleted as a link.
/// </summary>
internal static class FileTree
{
    /// <summary>
    /// Normalises an archive member name (<c>./a//b/</c> → <c>a/b</c>, <c>./</c> or <c>/</c> → empty = the root).
    /// Returns null and a reason when the name is absolute or has a <c>..</c> component: even a
    /// harmless-looking <c>a/../b</c> is refused, as docker and containerd layer writers never emit one.
    /// </summary>
    public static string? Normalize(string name, out string reason)
    {
        reason = "";
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            reason = "contains a NUL byte";
            return null;
        }

        // A bare "/" names the root itself, as "./" does (umoci writes it for a layer inserted at
        // "/"): it cannot reach outside. Every other absolute name is refused.
        if (name.StartsWith('/') && name.Trim('/').Length > 0)
        {
            reason = "is an absolute path";
            return null;
        }

        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                reason = "escapes the image root";
                return null;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }

    /// <summary>lstat(2) as a <see cref="NodeKind"/>.</summary>
    public static NodeKind Lstat(string path)
    {
        // FileSystemInfo.Attributes comes from lstat on Unix: ReparsePoint marks the link itself.
        var attributes = new FileInfo(path).Attributes;
        if ((int)attributes == -1)
        {
            return NodeKind.Missing;
        }

        if (attributes.HasFlag(FileAttributes.ReparsePoint))
        {
            return NodeKind.Symlink;
        }

        return attributes.HasFlag(FileAttributes.Directory) ? NodeKind.Directory : NodeKind.Other;
    }

    /// <summary>Removes whatever is at <paramref name="path"/> (a directory with its contents), never following links.</summary>
    public static void Remove(string path)
    {
        switch (Lstat(path))
        {
            case NodeKind.Missing:
                return;
            case NodeKind.Directory:
                DeleteTree(path);
                return;
            default:
                File.Delete(path);
                return;
        }
    }

    /// <summary>
    /// Depth-first delete that unlinks symlinks instead of descending into them (a symlinked
    /// directory inside an image must never make us delete host files).
    /// </summary>
    public static void DeleteTree(string directory)
    {
        foreach (var child in Directory.EnumerateFileSystemEntries(directory))
        {
            if (Lstat(child) == NodeKind.Directory)
            {
                DeleteTree(child);
            }
            else
            {
                File.Delete(child);
            }
        }

        Directory.Delete(directory);
    }
}
