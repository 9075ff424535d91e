using System.Runtime.InteropServices;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;
using Matchlock.Protocol.Messages;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// The <c>--disk</c> ext4 images: mounted at configure (before any exec), all or none, and
/// unmounted at power-off so the next sandbox finds them clean (no journal to replay).
/// </summary>
/// <remarks>
/// As Docker does for a new volume, a fresh writable disk (nothing on it but lost+found, its
/// root still as mkfs left it: root:root 0755) takes the owner and mode of the image's directory
/// it is mounted on, so <c>-u postgres</c> can write to <c>/var/lib/postgresql/data</c>. Unlike
/// Docker, the directory's contents are not copied onto it.
/// </remarks>
internal static unsafe class DiskMounts
{
    // All disks were attached at VM start and probed with the root disks; this only covers a
    // slow probe on a loaded host.
    private static readonly TimeSpan DiskTimeout = TimeSpan.FromSeconds(10);

    private static readonly Lock Gate = new();
    private static readonly List<string> Mounted = []; // guarded by Gate: mount points, in mount order

    /// <summary>Mounts every disk under <paramref name="root"/>; on a failure unmounts the ones it mounted and throws naming the disk.</summary>
    /// <exception cref="IOException">Which disk (<c>disk SERIAL at PATH</c>) and why.</exception>
    internal static void MountAll(string root, IReadOnlyList<GuestDisk> disks, string sysBlock = "/sys/block")
    {
        IReadOnlyDictionary<string, string> devices;
        try
        {
            devices = BlockDevices.WaitForSerials([.. disks.Select(d => d.Serial)], DiskTimeout, sysBlock);
        }
        catch (InvalidOperationException e)
        {
            throw new IOException(e.Message, e);
        }

        var done = new List<string>();
        foreach (var disk in disks)
        {
            var target = Path.Join(root.TrimEnd('/'), disk.Path);
            try
            {
                if (!disk.Path.StartsWith('/') || disk.Path.Split('/').Any(s => s is ".." or "."))
                {
                    throw new IOException($"mount path \"{disk.Path}\" must be absolute and normalised");
                }

                var imageDirectory = OwnerAndMode(target);
                Mounter.EnsureDirectory(target);
                // noinit_itable: volumes are sparse files formatted lazily; their inode tables
                // read as zeros already, and the kernel's background zeroing would only burn the
                // vCPU and fill the holes (as for the upper disk).
                Mounter.Mount(devices[disk.Serial], target, "ext4", disk.ReadOnly ? MS_RDONLY : 0, disk.ReadOnly ? null : "noinit_itable");
                done.Add(target);
                if (!disk.ReadOnly && imageDirectory is { } owner)
                {
                    AdoptIfFresh(target, owner);
                }
            }
            catch (IOException e)
            {
                for (var i = done.Count - 1; i >= 0; i--)
                {
                    Unmount(done[i]);
                }

                throw new IOException($"disk {disk.Serial} at {disk.Path}: {e.Message}{Hint(e, disk)}", e);
            }
        }

        lock (Gate)
        {
            Mounted.AddRange(done);
        }

        GuestLog.Info($"mounted {string.Join(", ", disks.Select(d => $"{devices[d.Serial]} at {d.Path}{(d.ReadOnly ? " (ro)" : "")}"))}");
    }

    /// <summary>
    /// Gives a fresh disk's root (root:root 0755, nothing but lost+found) the owner and mode the
    /// image had at its mount point. Anything else on the root means someone used it: left alone.
    /// </summary>
    internal static void AdoptIfFresh(string root, (uint Uid, uint Gid, uint Mode) image)
    {
        var current = OwnerAndMode(root) ?? throw new IOException($"{root} is not a directory");
        if (current == image || current != (0u, 0u, 0x1EDu /* 0755 */)
            || Directory.EnumerateFileSystemEntries(root).Any(e => Path.GetFileName(e) != "lost+found"))
        {
            return;
        }

        // chown first: it may clear set-id bits that the chmod then restores.
        if (Libc.chown(root, image.Uid, image.Gid) != 0)
        {
            throw NativeCallException.FromLastError($"chown {root} to {image.Uid}:{image.Gid} (the image's owner of the mount point)");
        }

        if (Libc.chmod(root, image.Mode) != 0)
        {
            throw NativeCallException.FromLastError($"chmod {root} to {Convert.ToString(image.Mode, 8)}");
        }
    }

    /// <summary>uid, gid and permission bits (07777) of a directory; null when it is missing or not a directory.</summary>
    private static (uint Uid, uint Gid, uint Mode)? OwnerAndMode(string path)
    {
        StatBuffer buffer;
        if (Libc.stat(path, &buffer) != 0 || (buffer.Mode & 0xF000) != 0x4000 /* S_IFDIR */)
        {
            return null;
        }

        return (buffer.Uid, buffer.Gid, buffer.Mode & 0xFFF);
    }

    /// <summary>At power-off, after every process is gone: unmounts in reverse order (a clean ext4, journal written out). Best effort.</summary>
    internal static void UnmountAll()
    {
        string[] mounted;
        lock (Gate)
        {
            mounted = [.. Mounted];
            Mounted.Clear();
        }

        for (var i = mounted.Length - 1; i >= 0; i--)
        {
            Unmount(mounted[i]);
        }
    }

    private static void Unmount(string target)
    {
        if (Libc.umount2(target, 0) == 0)
        {
            return;
        }

        // Still busy (a process we could not kill holds a file): at least flush it and mark it clean.
        GuestLog.Warn($"umount {target}: {NativeCallException.Describe(Marshal.GetLastPInvokeError())}; remounting it read-only");
        if (Libc.mount(null, target, null, MS_REMOUNT | MS_RDONLY, null) != 0)
        {
            GuestLog.Warn($"remount {target} read-only: {NativeCallException.Describe(Marshal.GetLastPInvokeError())}");
        }
    }

    private static string Hint(IOException e, GuestDisk disk) => (e as NativeCallException)?.Errno switch
    {
        Errno.EINVAL => " (is it an ext4 filesystem?)",
        Errno.EROFS when disk.ReadOnly => " (its journal needs replaying: a sandbox writing it was killed)",
        Errno.ENOTDIR => " (the mount path is a file in the image, not a directory)",
        _ => "",
    };
}
