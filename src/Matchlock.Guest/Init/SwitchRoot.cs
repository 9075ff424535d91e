using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Init;

/// <summary>
/// Makes the prepared overlay the root (docs/ARCHITECTURE.md D4). pivot_root would be the usual
/// way, but the initramfs is the kernel's rootfs, which pivot_root(2) refuses (EINVAL: rootfs
/// cannot be unmounted, so it cannot become the "old root"). We do what util-linux switch_root and
/// busybox switch_root do instead: chdir into the new root, move its mount onto "/",
/// chroot("."), chdir("/"). The initramfs stays underneath, unreachable; we delete its module
/// files first to give their RAM back.
/// Our own binary stays reachable as /proc/self/exe (a magic link, not a path lookup), which is
/// how the exec-as helper re-executes it after the switch.
/// </summary>
internal static class SwitchRoot
{
    internal static void Into(string newRoot)
    {
        if (Libc.chdir(newRoot) != 0)
        {
            throw NativeCallException.FromLastError($"chdir {newRoot}");
        }

        Mounter.Move(".", "/");
        if (Libc.chroot(".") != 0)
        {
            throw NativeCallException.FromLastError("chroot .");
        }

        if (Libc.chdir("/") != 0)
        {
            throw NativeCallException.FromLastError("chdir /");
        }
    }

    /// <summary>Deletes initramfs files we no longer need (ramfs memory is freed only by deleting).</summary>
    internal static void FreeInitramfs()
    {
        foreach (var path in new[] { "/lib/modules", "/etc/matchlock" })
        {
            try
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
            }
            catch (IOException)
            {
                // Only memory is at stake; keep booting.
            }
        }
    }
}
