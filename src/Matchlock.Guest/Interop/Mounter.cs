using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>mount(2) and mkdir with errors that name what was being mounted where.</summary>
internal static class Mounter
{
    internal static void Mount(string? source, string target, string? type, nuint flags = 0, string? data = null)
    {
        if (Libc.mount(source, target, type, flags, data) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new NativeCallException($"mount {type ?? "(move)"} {source} on {target}{(data is null ? "" : $" ({data})")}", errno);
        }
    }

    /// <summary>Moves an existing mount (mount --move).</summary>
    internal static void Move(string source, string target) => Mount(source, target, null, LibcConstants.MS_MOVE);

    /// <summary>mkdir -p with the given mode for the directories it creates.</summary>
    internal static void EnsureDirectory(string path, uint mode = 0x1ED /* 0755 */)
    {
        if (Directory.Exists(path))
        {
            return;
        }

        var parent = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(parent) && parent != path)
        {
            EnsureDirectory(parent, 0x1ED);
        }

        if (Libc.mkdir(path, mode) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EEXIST)
            {
                throw new NativeCallException($"mkdir {path}", errno);
            }
        }
    }

    /// <summary>Replaces whatever is at <paramref name="linkPath"/> with a symlink.</summary>
    internal static void Symlink(string target, string linkPath)
    {
        _ = Libc.unlink(linkPath);
        if (Libc.symlink(target, linkPath) != 0)
        {
            throw NativeCallException.FromLastError($"symlink {linkPath} -> {target}");
        }
    }
}
