using System.Runtime.InteropServices;
using Matchlock.Guest.Interop;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Single-file mounts (docs/VFS.md "Single files"): a FUSE root is a directory, so the host's
/// one-entry view of the file's folder is mounted at a hidden path and the file bind-mounted onto
/// its target, as Docker binds a file. The target is created as an empty file (and its parents)
/// when missing; a directory there is refused.
/// </summary>
internal static class FileBind
{
    /// <summary>Binds <paramref name="source"/> onto <paramref name="target"/>; null when done, else why not (and the errno name).</summary>
    internal static (string Reason, string Code)? Bind(string source, string target, bool readOnly)
    {
        try
        {
            if (Directory.Exists(target))
            {
                return ($"{target} is a directory in the image; a file can only be mounted onto a file", "EISDIR");
            }

            if (!File.Exists(target))
            {
                Mounter.EnsureDirectory(Path.GetDirectoryName(target)!);
                using (File.Create(target))
                {
                }

                File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return ($"creating {target}: {e.Message}", "EIO");
        }

        if (Libc.mount(source, target, null, MS_BIND, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return ($"bind {source} onto {target}: {NativeCallException.Describe(errno)}", ErrorCodes.FromErrno(errno));
        }

        // A bind takes its flags only from a remount (mount(2)): read-only, and never setuid or devices.
        var flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (readOnly ? MS_RDONLY : 0);
        if (Libc.mount(null, target, null, flags, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            VfsMountHandler.Unmount(target);
            return ($"remount {target}{(readOnly ? " read-only" : "")}: {NativeCallException.Describe(errno)}", ErrorCodes.FromErrno(errno));
        }

        return null;
    }
}
