using System.Runtime.InteropServices;

namespace Matchlock.Core.Interop;

/// <summary>
/// mount(2) / umount2(2) on the host, for the VFS's overlay mounts (docs/VFS.md), and the one rule
/// every removal of a VM directory follows: unmount what is mounted under it first.
/// </summary>
internal static partial class HostMounts
{
    private const ulong MsNoSuid = 2;
    private const ulong MsNoDev = 4;
    private const int MntDetach = 2;

    /// <summary>An overlayfs of <paramref name="lower"/> (never written) with <paramref name="upper"/>/<paramref name="work"/> at <paramref name="target"/>.</summary>
    /// <exception cref="IOException">mount(2) failed (e.g. EPERM: not root).</exception>
    public static void MountOverlay(string lower, string upper, string work, string target)
    {
        var options = $"lowerdir={Escape(lower)},upperdir={Escape(upper)},workdir={Escape(work)}";
        if (mount("overlay", target, "overlay", MsNoSuid | MsNoDev, options) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mount overlay at {target}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    /// <summary>Detaches the mount at <paramref name="target"/>; false when nothing was mounted there.</summary>
    public static bool Unmount(string target) => umount2(target, MntDetach) == 0;

    /// <summary>
    /// Detaches every mount at or below <paramref name="dir"/> (deepest first, from
    /// /proc/self/mountinfo), so deleting the directory never walks into a mounted view.
    /// </summary>
    public static void UnmountAllUnder(string dir)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/mountinfo");
        }
        catch (IOException)
        {
            return;
        }

        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        var targets = lines
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 4)
            .Select(f => Unescape(f[4]))
            .Where(t => t == root || t.StartsWith(root + "/", StringComparison.Ordinal))
            .OrderByDescending(t => t.Length);
        foreach (var target in targets)
        {
            Unmount(target);
        }
    }

    /// <summary>overlayfs options separate with ',' and lowerdirs with ':'; a path holding either (or '\') is refused rather than escaped wrong.</summary>
    private static string Escape(string path) =>
        path.IndexOfAny([',', ':', '\\']) >= 0
            ? throw new IOException($"{path}: a path with ',', ':' or '\\' cannot be an overlay layer")
            : path;

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string filesystemtype, ulong mountflags, string data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);
}
