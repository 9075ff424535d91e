namespace Matchlock.Core.Vfs;

/// <summary>How a mount's files are provided (docs/VFS.md "Providers").</summary>
public enum VfsMountType
{
    /// <summary>A private copy-on-write view of a host folder; the guest's changes vanish with the VM.</summary>
    Overlay,

    /// <summary>The host folder itself, live and writable.</summary>
    HostFs,

    /// <summary>The host folder, live and read-only (every write: EROFS).</summary>
    ReadOnly,

    /// <summary>An empty tree in the owner's memory.</summary>
    Memory,
}

/// <summary>
/// One VFS mount of a sandbox: where it appears in the guest and what backs it. Parsed from
/// <c>-v HOST:GUEST[:overlay|host_fs|ro]</c> (the default type is overlay, the safe one) or built
/// by the rpc's <c>vfs.mounts</c>.
/// </summary>
public sealed record VfsMountSpec(string GuestPath, VfsMountType Type, string? HostPath = null)
{
    /// <summary>
    /// <see cref="HostPath"/> is one file, not a folder (docs/VFS.md "Single files"): it appears at
    /// <see cref="GuestPath"/> as a file (an overlay of a file is a private copy made at start).
    /// </summary>
    public bool IsFile { get; init; }

    /// <summary>Where mounts without a guest path of their own go (<c>--workspace</c>).</summary>
    public const string DefaultWorkspace = "/workspace";

    private static readonly string[] Forbidden = ["/proc", "/sys", "/dev"];

    /// <summary>Parses <c>HOST:GUEST[:TYPE]</c>; a relative GUEST joins <paramref name="workspace"/>, a relative HOST <paramref name="currentDirectory"/>.</summary>
    /// <exception cref="ArgumentException">What is wrong and the expected form.</exception>
    public static VfsMountSpec Parse(string value, string workspace = DefaultWorkspace, string? currentDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(value);
        const string Form = "expected HOST_PATH:GUEST_PATH[:overlay|host_fs|ro], e.g. ./repo:/workspace/repo:host_fs";
        var parts = value.Split(':');
        var type = VfsMountType.Overlay;
        if (parts.Length >= 3 && ParseType(parts[^1]) is { } given)
        {
            type = given;
            parts = parts[..^1];
        }
        else if (parts.Length >= 3)
        {
            throw new ArgumentException($"-v \"{value}\": unknown mount type \"{parts[^1]}\" (overlay, host_fs or ro); {Form}");
        }

        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            throw new ArgumentException($"-v \"{value}\": {Form}");
        }

        var host = Path.GetFullPath(parts[0], currentDirectory ?? Environment.CurrentDirectory);
        return OfHostPath(GuestPathOf(parts[1], workspace, value), type, host, $"-v \"{value}\"");
    }

    /// <summary>
    /// A mount of an existing host folder or regular file (<see cref="IsFile"/>); a memory type is
    /// refused here (it has no host path).
    /// </summary>
    /// <exception cref="ArgumentException">The path is missing, or is neither a folder nor a regular file.</exception>
    public static VfsMountSpec OfHostPath(string guestPath, VfsMountType type, string hostPath, string shownAs)
    {
        if (Directory.Exists(hostPath))
        {
            return new VfsMountSpec(guestPath, type, hostPath);
        }

        if (File.Exists(hostPath))
        {
            if ((File.GetAttributes(hostPath) & FileAttributes.Device) != 0 || Path.GetFileName(hostPath).Length == 0)
            {
                throw new ArgumentException($"{shownAs}: {hostPath} is not a regular file or folder");
            }

            return new VfsMountSpec(guestPath, type, hostPath) { IsFile = true };
        }

        throw new ArgumentException($"{shownAs}: {hostPath} does not exist on the host (a folder or a file to mount)");
    }

    /// <summary>An absolute, normalised guest path (a relative one joins the workspace), not under /proc, /sys or /dev.</summary>
    public static string GuestPathOf(string path, string workspace, string shownAs)
    {
        var joined = path.StartsWith('/') ? path : $"{workspace.TrimEnd('/')}/{path}";
        var segments = new List<string>();
        foreach (var segment in joined.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (segment == "..")
            {
                throw new ArgumentException($"\"{shownAs}\": the guest path may not contain \"..\"");
            }

            if (segment != ".")
            {
                segments.Add(segment);
            }
        }

        var normalised = "/" + string.Join('/', segments);
        if (normalised == "/" || Forbidden.Any(f => normalised == f || normalised.StartsWith(f + "/", StringComparison.Ordinal)))
        {
            throw new ArgumentException($"\"{shownAs}\": {normalised} cannot be a mount point (not /, /proc, /sys or /dev)");
        }

        return normalised;
    }

    /// <summary>Refuses two mounts at one guest path.</summary>
    public static void CheckDistinct(IReadOnlyList<VfsMountSpec> mounts)
    {
        ArgumentNullException.ThrowIfNull(mounts);
        if (mounts.GroupBy(m => m.GuestPath, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new ArgumentException($"two mounts at {twice.Key}: each guest path takes one -v");
        }
    }

    private static VfsMountType? ParseType(string text) => text switch
    {
        "overlay" => VfsMountType.Overlay,
        "host_fs" => VfsMountType.HostFs,
        "ro" => VfsMountType.ReadOnly,
        "memory" => VfsMountType.Memory,
        _ => null,
    };
}
