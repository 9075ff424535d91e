using Matchlock.Core.Volumes;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// One ext4 image attached to a sandbox as an extra block device and mounted in the guest before
/// any command runs (<c>--disk @volume:/guest/path[:ro]</c> or <c>--disk host.ext4:/guest/path[:ro]</c>).
/// Exactly one of <see cref="VolumeName"/> and <see cref="HostPath"/> is set. Immutable.
/// </summary>
public sealed record DiskMount
{
    /// <summary>How many disks one sandbox may attach: microvm has a fixed number of virtio-mmio
    /// slots, shared with the root, upper, network and channel devices.</summary>
    public const int MaxDisks = 16;

    // Kernel filesystems the guest's init owns (as runc refuses mounts inside /proc).
    private static readonly string[] ReservedGuestPaths = ["/proc", "/sys", "/dev"];

    /// <summary>A named volume (<c>matchlock volume create</c>).</summary>
    public string? VolumeName { get; init; }

    /// <summary>An absolute path to an ext4 image file on the host.</summary>
    public string? HostPath { get; init; }

    /// <summary>Absolute, normalised mount point in the guest; created there if missing.</summary>
    public required string GuestPath { get; init; }

    /// <summary>Attached read-only (QEMU <c>readonly=on</c>) and mounted <c>ro</c>; several sandboxes may share it.</summary>
    public bool ReadOnly { get; init; }

    /// <summary><c>@name</c> or the host path, as the user would write it.</summary>
    public string Source => VolumeName is { } name ? "@" + name : HostPath ?? "";

    public override string ToString() => $"{Source}:{GuestPath}{(ReadOnly ? ":ro" : "")}";

    /// <summary>
    /// Parses a <c>--disk</c> value, <c>SOURCE:GUEST_PATH[:ro|:rw]</c>: SOURCE is <c>@NAME</c> for
    /// a named volume or a host path (relative to <paramref name="currentDirectory"/>, default the
    /// process's; it must be an existing regular file). The host path may itself contain ':'.
    /// </summary>
    /// <exception cref="ArgumentException">What is wrong with the value, and the expected form.</exception>
    public static DiskMount Parse(string value, string? currentDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(value);
        const string Form = "expected @VOLUME:/guest/path[:ro] or /host/disk.ext4:/guest/path[:ro]";
        var parts = value.Split(':');
        var readOnly = false;
        if (parts.Length >= 3 && parts[^1] is "ro" or "rw")
        {
            readOnly = parts[^1] == "ro";
            parts = parts[..^1];
        }
        else if (parts.Length >= 3 && !parts[^1].StartsWith('/'))
        {
            throw new ArgumentException($"--disk \"{value}\": unknown option \"{parts[^1]}\" (only ro or rw); {Form}");
        }

        if (parts.Length < 2 || parts[^1].Length == 0)
        {
            throw new ArgumentException($"--disk \"{value}\" has no guest mount path; {Form}");
        }

        var source = string.Join(':', parts[..^1]);
        if (source.Length == 0 || source == "@")
        {
            throw new ArgumentException($"--disk \"{value}\" has no source; {Form}");
        }

        var guestPath = NormalizeGuestPath(parts[^1], value);
        if (source.StartsWith('@'))
        {
            var name = source[1..];
            if (!VolumeStore.IsValidName(name))
            {
                throw new ArgumentException(
                    $"--disk \"{value}\": invalid volume name \"{name}\" (letters, digits, '_', '.' and '-', starting with a letter or digit)");
            }

            return new DiskMount { VolumeName = name, GuestPath = guestPath, ReadOnly = readOnly };
        }

        var hostPath = Path.GetFullPath(source, currentDirectory ?? Environment.CurrentDirectory);
        if (Directory.Exists(hostPath))
        {
            throw new ArgumentException($"--disk \"{value}\": {hostPath} is a directory; --disk attaches an ext4 image file (make one with `mkfs.ext4 FILE SIZE`, or use a named volume: @NAME)");
        }

        if (!File.Exists(hostPath))
        {
            throw new ArgumentException($"--disk \"{value}\": the host file {hostPath} does not exist (for a named volume write @NAME; `matchlock volume ls` lists them)");
        }

        if (!FileIdentity.Of(hostPath).IsRegularFile)
        {
            throw new ArgumentException($"--disk \"{value}\": {hostPath} is not a regular file; --disk attaches ext4 image files, never host devices");
        }

        return new DiskMount { HostPath = hostPath, GuestPath = guestPath, ReadOnly = readOnly };
    }

    /// <summary>Checks one disk as a library caller may have built it.</summary>
    /// <exception cref="ArgumentException">Which field is wrong and why.</exception>
    public void Validate()
    {
        if ((VolumeName is null) == (HostPath is null))
        {
            throw new ArgumentException($"--disk {this}: give exactly one of a volume name or a host path");
        }

        if (VolumeName is { } name && !VolumeStore.IsValidName(name))
        {
            throw new ArgumentException($"--disk {this}: invalid volume name \"{name}\"");
        }

        if (HostPath is { } host && !Path.IsPathFullyQualified(host))
        {
            throw new ArgumentException($"--disk {this}: the host path must be absolute");
        }

        if (NormalizeGuestPath(GuestPath, ToString()) != GuestPath)
        {
            throw new ArgumentException($"--disk {this}: the guest path must be normalised (no '//', '.' or trailing '/')");
        }
    }

    /// <summary>Checks a sandbox's whole list: each disk, the count, and no mount point or source used twice.</summary>
    /// <exception cref="ArgumentException">What is wrong.</exception>
    public static void ValidateAll(IReadOnlyList<DiskMount> disks)
    {
        ArgumentNullException.ThrowIfNull(disks);
        if (disks.Count > MaxDisks)
        {
            throw new ArgumentException($"at most {MaxDisks} --disk per sandbox; got {disks.Count}");
        }

        var mountPoints = new HashSet<string>(StringComparer.Ordinal);
        var sources = new HashSet<string>(StringComparer.Ordinal);
        foreach (var disk in disks)
        {
            disk.Validate();
            if (!mountPoints.Add(disk.GuestPath))
            {
                throw new ArgumentException($"--disk: two disks are mounted at {disk.GuestPath}");
            }

            if (!sources.Add(disk.Source))
            {
                throw new ArgumentException($"--disk: {disk.Source} is attached twice (one image can be mounted once per sandbox)");
            }
        }
    }

    /// <summary>
    /// The canonical absolute form (no empty or '.' segments, no trailing '/'); refuses relative
    /// paths, '..', the root and the kernel filesystems init mounts.
    /// </summary>
    internal static string NormalizeGuestPath(string path, string value)
    {
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException($"--disk \"{value}\": the guest mount path \"{path}\" must be absolute (start with /)");
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"--disk \"{value}\": the guest mount path contains a NUL character");
        }

        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(s => s != ".").ToArray();
        if (segments.Contains(".."))
        {
            throw new ArgumentException($"--disk \"{value}\": the guest mount path \"{path}\" must not contain '..'");
        }

        if (segments.Length == 0)
        {
            throw new ArgumentException($"--disk \"{value}\": a disk cannot be mounted at / (the image is the root); pick a directory such as /data");
        }

        var normalized = "/" + string.Join('/', segments);
        if (ReservedGuestPaths.FirstOrDefault(r => normalized == r || normalized.StartsWith(r + "/", StringComparison.Ordinal)) is { } reserved)
        {
            throw new ArgumentException($"--disk \"{value}\": {normalized} is inside {reserved}, which the guest's kernel filesystems own; pick another mount path");
        }

        return normalized;
    }
}
