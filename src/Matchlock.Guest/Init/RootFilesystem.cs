using Matchlock.Guest.Interop;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Init;

/// <summary>
/// Builds the container root (docs/ARCHITECTURE.md D5): the image's EROFS read-only below, the per-VM ext4
/// above, joined by overlayfs at /run/matchlock/root, then the usual kernel filesystems inside.
/// </summary>
internal static class RootFilesystem
{
    internal const string Lower = "/run/matchlock/lower";
    internal const string Upper = "/run/matchlock/upper";
    internal const string NewRoot = "/run/matchlock/root";

    // overlayfs options, chosen so the upper layer stays a plain OCI-convertible diff that a host
    // tool (or a later `build`) can read:
    //  - index=off: no hard-link index; we never NFS-export and never reuse the upper with
    //    another lower, and index=on needs xattr-consistent lowers.
    //  - redirect_dir=off: renaming a lower directory fails with EXDEV and tools fall back to
    //    copy+delete (mv does) — what Docker's overlay2 does; redirect xattrs cannot be expressed
    //    in an image layer.
    //  - metacopy=off: copy-up copies data too; metadata-only upper files are also not layers.
    //  - not "volatile": a long-lived sandbox's upper disk must survive a guest crash intact.
    private const string OverlayOptions = "lowerdir=" + Lower + ",upperdir=" + Upper + "/upper,workdir=" + Upper + "/work,index=off,redirect_dir=off,metacopy=off";

    /// <summary>Mounts erofs + ext4 + overlay; returns nothing, throws with what failed.</summary>
    internal static void MountLayers(string imageDevice, string upperDevice)
    {
        Mounter.EnsureDirectory(Lower);
        Mounter.EnsureDirectory(Upper);
        Mounter.EnsureDirectory(NewRoot);
        Mounter.Mount(imageDevice, Lower, "erofs", MS_RDONLY);
        // noinit_itable: the host formatted this disk lazily on a sparse file, so its inode tables
        // already read as zeros; the kernel's background zeroing would only burn the vCPU and
        // turn the sparse file into real blocks.
        Mounter.Mount(upperDevice, Upper, "ext4", MS_NOATIME, "noinit_itable");
        Mounter.EnsureDirectory(Upper + "/upper");
        Mounter.EnsureDirectory(Upper + "/work");
        Mounter.Mount("overlay", NewRoot, "overlay", 0, OverlayOptions);
    }

    /// <summary>
    /// Moves the initramfs's /dev, /proc and /sys into the new root (what switch_root does, so
    /// nothing stays mounted out of reach) and mounts the rest like a container runtime would.
    /// Docker leaves /tmp on the image's filesystem, and so do we; /run and /dev/shm are tmpfs.
    /// </summary>
    internal static void PopulateNewRoot(string root = NewRoot)
    {
        foreach (var directory in new[] { "dev", "proc", "sys", "run", "tmp" })
        {
            Mounter.EnsureDirectory($"{root}/{directory}");
        }

        // /tmp must be world-writable and sticky even if the image forgot to create it.
        _ = Libc.chmod($"{root}/tmp", 0x3FF /* 01777 */);

        Mounter.Move("/proc", $"{root}/proc");
        Mounter.Move("/sys", $"{root}/sys");
        Mounter.Move("/dev", $"{root}/dev");

        Mounter.Mount("cgroup2", $"{root}/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC);

        // devtmpfs gives the kernel's device nodes (null, zero, full, random, urandom, tty,
        // console, the disks); it does not create the udev-style symlinks, so we do.
        Mounter.EnsureDirectory($"{root}/dev/pts");
        // A private devpts instance; gid 5 (tty) and mode 0620 are what Docker and most distros use.
        Mounter.Mount("devpts", $"{root}/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
        Mounter.Symlink("pts/ptmx", $"{root}/dev/ptmx");
        Mounter.EnsureDirectory($"{root}/dev/shm");
        // Docker's /dev/shm flags; no size cap (tmpfs defaults to half of RAM) because browsers and
        // multiprocessing code need more than Docker's 64 MiB default.
        Mounter.Mount("shm", $"{root}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777");
        Mounter.EnsureDirectory($"{root}/dev/mqueue");
        Mounter.Mount("mqueue", $"{root}/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC);
        Mounter.Symlink("/proc/self/fd", $"{root}/dev/fd");
        Mounter.Symlink("/proc/self/fd/0", $"{root}/dev/stdin");
        Mounter.Symlink("/proc/self/fd/1", $"{root}/dev/stdout");
        Mounter.Symlink("/proc/self/fd/2", $"{root}/dev/stderr");
        Mounter.Symlink("/proc/kcore", $"{root}/dev/core");

        Mounter.Mount("tmpfs", $"{root}/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    }
}
