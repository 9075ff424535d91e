using System.Runtime.InteropServices;
using Matchlock.Guest.Agent;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;
using Matchlock.Guest.Processes;
using Microsoft.Win32.SafeHandles;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Init;

/// <summary>
/// Clean power-off (CONTRACTS.md "Power off"): SIGTERM everything, wait up to a grace, SIGKILL
/// what is left, then make the disks consistent and reboot. Every step after the kill is best
/// effort and logged; none may stop us from powering off.
/// </summary>
internal static class ShutdownSequence
{
    /// <param name="reaper">Tells us when no child is left.</param>
    /// <param name="upperMount">O_PATH fd of the ext4 upper mount, kept from before the root
    /// switch (its path is unreachable afterwards); null when unknown.</param>
    /// <param name="grace">How long processes get after SIGTERM.</param>
    /// <param name="cgroups">The sandbox group to kill as a whole; null when there is none.</param>
    internal static void PowerOff(Reaper reaper, SafeFileHandle? upperMount, TimeSpan grace, CgroupLayout? cgroups)
    {
        // kill(-1) signals every process we may signal except ourselves (kill(2)); every user
        // process in the guest is our descendant, so "no children" means "none left".
        _ = Libc.kill(-1, SIGTERM);
        if (!reaper.WaitForNoChildren(grace))
        {
            GuestLog.Warn($"processes still running {grace.TotalSeconds:F1} s after SIGTERM; sending SIGKILL");
            // cgroup.kill first: a fork bomb forks faster than kill(-1) can walk it, the cgroup
            // kill also takes what is forked meanwhile. kill(-1) then gets the rest (a process
            // that slipped out of the group, see ChildPlacement).
            cgroups?.KillAll();
            _ = Libc.kill(-1, SIGKILL);
            _ = reaper.WaitForNoChildren(TimeSpan.FromSeconds(2));
        }

        // VFS mounts before the sync: a FUSE mount whose host end is gone (the link closes with the
        // shutdown reply) would hold the sync's writeback forever. Unmounted and their connections
        // aborted; data not yet sent to the host is lost (the host closes its mounts first).
        VfsMounts.UnmountAll();
        Libc.sync();
        // The --disk volumes first: they sit on top of the root, and unmounting them leaves them
        // clean for the next sandbox (a read-only attach cannot replay a journal).
        DiskMounts.UnmountAll();
        // Read-only remounts flush and mark the filesystems clean (ext4 writes its journal out),
        // which an unmount would do too, but "/" is our own root and cannot be unmounted.
        TryMount(null, "/", MS_REMOUNT | MS_RDONLY, "remount / read-only");
        if (upperMount is not null && !upperMount.IsInvalid)
        {
            TryMount(null, $"/proc/self/fd/{upperMount.DangerousGetHandle()}", MS_REMOUNT | MS_RDONLY, "remount upper disk read-only");
        }

        Libc.sync();
        if (Libc.umount2("/", MNT_DETACH) != 0)
        {
            GuestLog.Warn($"umount / (lazy): {NativeCallException.Describe(Marshal.GetLastPInvokeError())}");
        }

        GuestLog.Info("powering off");
        PowerControl.Reboot();
    }

    private static void TryMount(string? source, string target, nuint flags, string what)
    {
        if (Libc.mount(source, target, null, flags, null) != 0)
        {
            GuestLog.Warn($"{what}: {NativeCallException.Describe(Marshal.GetLastPInvokeError())}");
        }
    }
}
