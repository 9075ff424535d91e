using Matchlock.Core.Images;
using Matchlock.Core.Interop;
using Matchlock.Core.Vm;
using Matchlock.Core.Volumes;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// A sandbox's <c>--disk</c> images while it runs: resolved to host files, checked, and locked
/// (flock: exclusive for a writable disk, shared for <c>:ro</c>) so no two sandboxes write one
/// ext4 at once, which would corrupt it. Owned by the <see cref="Sandbox"/>; dispose it only after
/// the VMM has exited (QEMU writes the images until then). The locks also die with the process,
/// so a crashed owner never leaves a volume locked.
/// </summary>
internal sealed class AttachedDisks : IDisposable
{
    /// <summary>virtio serials <c>mldisk0</c>, <c>mldisk1</c>, …: how the guest finds each disk (CONTRACTS).</summary>
    public const string SerialPrefix = "mldisk";

    private readonly List<Disk> _disks;

    private AttachedDisks(List<Disk> disks) => _disks = disks;

    public static AttachedDisks None => new([]);

    public bool AnyWritable => _disks.Any(d => !d.Mount.ReadOnly);

    /// <summary>The extra block devices, after the root and upper disks.</summary>
    public IEnumerable<VmDisk> VmDisks => _disks.Select(d => new VmDisk(d.HostPath, d.Serial, d.Mount.ReadOnly));

    /// <summary>For the configure request, parents before children (a disk at /a/b must be mounted after the one at /a).</summary>
    public IReadOnlyList<GuestDisk> GuestMounts =>
        [.. _disks.OrderBy(d => d.Mount.GuestPath.Count(c => c == '/')).ThenBy(d => d.Mount.GuestPath, StringComparer.Ordinal)
            .Select(d => new GuestDisk(d.Serial, d.Mount.GuestPath, d.Mount.ReadOnly))];

    /// <summary>Host image paths, for the state database.</summary>
    public IEnumerable<string> HostPaths => _disks.Select(d => d.HostPath);

    /// <summary>Replaces the guest's names for disks in an error message (<c>disk SERIAL at PATH:</c>, see the guest's DiskMounts) with the user's <c>--disk</c> values.</summary>
    public string Describe(string guestMessage) =>
        _disks.Aggregate(guestMessage, (message, d) => message.Replace($"disk {d.Serial} at {d.Mount.GuestPath}:", $"--disk {d.Mount}:", StringComparison.Ordinal));

    /// <summary>Resolves and locks every disk; all or nothing.</summary>
    /// <exception cref="InvalidInputException">A disk is missing, not a regular file or not an ext4 image.</exception>
    /// <exception cref="SandboxStartException">A disk is in use, not accessible, or needs its journal replayed; no lock is kept.</exception>
    public static AttachedDisks Acquire(IReadOnlyList<DiskMount> mounts, string volumesDir)
    {
        DiskMount.ValidateAll(mounts);
        var store = new VolumeStore(volumesDir);
        var disks = new List<Disk>();
        try
        {
            for (var i = 0; i < mounts.Count; i++)
            {
                // Before locking: our own earlier lock on the same image would otherwise read as "in use".
                if (disks.FirstOrDefault(d => IdentityOrNull(PathOf(mounts[i], store)) is { } id && d.Identity.SameFileAs(id)) is { } other)
                {
                    throw new InvalidInputException($"--disk {mounts[i]} and --disk {other.Mount} are the same image; one image can be attached once per sandbox");
                }

                disks.Add(AcquireOne(mounts[i], $"{SerialPrefix}{i}", store));
            }

            return new AttachedDisks(disks);
        }
        catch
        {
            foreach (var d in disks)
            {
                d.Lock.Dispose();
            }

            throw;
        }
    }

    private static string PathOf(DiskMount mount, VolumeStore store) => mount.VolumeName is { } name ? store.PathOf(name) : mount.HostPath!;

    private static FileIdentity? IdentityOrNull(string path)
    {
        try
        {
            return FileIdentity.Of(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // missing or unreadable: the attach itself says so
        }
    }

    private static Disk AcquireOne(DiskMount mount, string serial, VolumeStore store)
    {
        var path = PathOf(mount, store);
        var what = mount.VolumeName is { } n ? $"volume \"{n}\"" : $"disk image {path}";
        // Before opening: open(2) on a FIFO would block, and a device or directory is never an image.
        if (IdentityOrNull(path) is { IsRegularFile: false })
        {
            throw new InvalidInputException($"--disk {mount}: {path} is not a regular file; --disk attaches ext4 image files, never directories or host devices");
        }

        FileLock? held;
        try
        {
            held = FileLock.TryAcquireExisting(path, exclusive: !mount.ReadOnly, writable: !mount.ReadOnly);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw mount.VolumeName is { } missing
                ? new InvalidInputException($"--disk {mount}: named volume not found: \"{missing}\"; create it with `matchlock volume create {missing}` (`matchlock volume ls` lists them)", ex)
                : new InvalidInputException($"--disk {mount}: {path} does not exist", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new SandboxStartException($"--disk {mount}: {ex.Message}{(mount.ReadOnly ? "" : " (attach it with :ro to only read it)")}", ex);
        }

        if (held is null)
        {
            throw new SandboxStartException(
                $"--disk {mount}: {what} is in use by another sandbox{(mount.ReadOnly ? " that writes it" : "")}; an ext4 image can be written by one sandbox at a time "
                + "(stop the other one, or attach it with :ro everywhere)");
        }

        try
        {
            // After the lock: a `volume rm` that unlinked the file just before cannot go unnoticed.
            var identity = FileIdentity.Of(held.Handle);
            FileIdentity named;
            try
            {
                named = FileIdentity.Of(path);
            }
            catch (FileNotFoundException)
            {
                named = default;
            }

            if (!identity.SameFileAs(named))
            {
                throw new SandboxStartException($"--disk {mount}: {what} was removed or replaced while it was being attached");
            }

            if (!identity.IsRegularFile)
            {
                throw new InvalidInputException($"--disk {mount}: {path} is not a regular file; --disk attaches ext4 image files, never host devices");
            }

            if (!Ext4Image.HasSuperblock(held.Handle))
            {
                throw new InvalidInputException($"--disk {mount}: {path} is not an ext4 filesystem image (no ext2/3/4 superblock); make one with `mkfs.ext4 FILE` or `matchlock volume create NAME`");
            }

            // The guest kernel cannot replay a journal on a read-only device, and we do not replay
            // it on the host: the image was written by an untrusted guest, and e2fsck would parse
            // it as root here. A writable attach replays it inside the guest, where it belongs.
            if (mount.ReadOnly && Ext4Image.NeedsRecovery(held.Handle))
            {
                throw new SandboxStartException(
                    $"--disk {mount}: {what} was not unmounted cleanly (a sandbox writing it was killed) and its journal must be replayed before a read-only mount; "
                    + $"attach it once without :ro, e.g. `matchlock run --image busybox --disk {mount.Source}:/mnt -- true`, which replays it");
            }

            return new Disk(mount, path, serial, held, identity);
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var d in _disks)
        {
            d.Lock.Dispose();
        }
    }

    private sealed record Disk(DiskMount Mount, string HostPath, string Serial, FileLock Lock, FileIdentity Identity);
}
