using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Init;

/// <summary>
/// PID 1's boot, from the kernel handing us the initramfs to a running container root:
/// <list type="number">
/// <item>devtmpfs, proc, sysfs in the initramfs; fds 0-2 on the console;</item>
/// <item>kernel modules from /etc/matchlock/modules;</item>
/// <item>disks by serial (mlroot, mlupper), then erofs + ext4 + overlay (<see cref="RootFilesystem"/>);</item>
/// <item>kernel filesystems inside the new root, then the switch (<see cref="SwitchRoot"/>).</item>
/// </list>
/// Any exception here is fatal: the caller logs it and powers off.
/// </summary>
internal static class Boot
{
    internal const string ImageSerial = "mlroot";
    internal const string UpperSerial = "mlupper";

    // Under TCG the mmio disks show up within tens of milliseconds of virtio_blk loading;
    // ten seconds means "they are not coming", with room for a loaded host.
    private static readonly TimeSpan DiskTimeout = TimeSpan.FromSeconds(10);

    internal static BootResult Run()
    {
        var started = Stopwatch.GetTimestamp();
        _ = Libc.umask(0x12 /* 022 */);

        // The kernel does not mount devtmpfs on an initramfs (CONFIG_DEVTMPFS_MOUNT applies to
        // the real root only). EBUSY would mean someone did already.
        Mounter.EnsureDirectory("/dev");
        if (Libc.mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") != 0 && Marshal.GetLastPInvokeError() != Errno.EBUSY)
        {
            throw NativeCallException.FromLastError("mount devtmpfs on /dev");
        }

        EnsureStandardDescriptors();
        Mounter.EnsureDirectory("/proc");
        Mounter.Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
        Mounter.EnsureDirectory("/sys");
        Mounter.Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC);

        var commandLine = KernelCommandLine.ReadCurrent();
        GuestLog.Info($"booting (uptime {Uptime()})");

        var timings = new Dictionary<string, long>(StringComparer.Ordinal);
        var phase = Stopwatch.GetTimestamp();
        void EndPhase(string name)
        {
            timings[name] = (long)Stopwatch.GetElapsedTime(phase).TotalMilliseconds;
            phase = Stopwatch.GetTimestamp();
        }

        ModuleLoader.LoadListed();
        EndPhase("modules");

        // docs/ARCHITECTURE.md D7: the NIC's driver only when the VM has a NIC (module loading is boot time);
        // the files are in the initramfs, gone after the switch, so it is now or never.
        if (VirtioDevices.Has(VirtioDevices.Net))
        {
            ModuleLoader.LoadListed(ModuleLoader.NetListPath);
            EndPhase("net_modules");
        }

        var disks = BlockDevices.WaitForSerials([ImageSerial, UpperSerial], DiskTimeout);
        EndPhase("disks");
        RootFilesystem.MountLayers(disks[ImageSerial], disks[UpperSerial]);

        // Keep a handle on the upper mount for the shutdown's read-only remount; after the switch
        // its path is out of reach. O_PATH: a reference, not an open directory for reading.
        var upperMount = FileDescriptors.Open(RootFilesystem.Upper, O_PATH | O_DIRECTORY);

        // fuse is loaded at the first vfs_mount, long after its file is deleted with the
        // initramfs: keep it open (an open ramfs file keeps its pages).
        var vfsModules = ModuleLoader.Retain(ModuleLoader.VfsListPath);

        RootFilesystem.PopulateNewRoot();
        SwitchRoot.FreeInitramfs();
        SwitchRoot.Into(RootFilesystem.NewRoot);
        try
        {
            Loopback.BringUp();
        }
        catch (NativeCallException e)
        {
            // Not fatal: only localhost connections suffer.
            GuestLog.Warn($"loopback: {e.Message}");
        }

        EndPhase("mounts");
        timings["init_total"] = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;

        GuestLog.Info(string.Create(CultureInfo.InvariantCulture,
            $"root ready: image {disks[ImageSerial]}, upper {disks[UpperSerial]}; {string.Join(", ", timings.Select(t => $"{t.Key} {t.Value} ms"))}"));
        return new BootResult(commandLine, upperMount, timings, vfsModules);
    }

    /// <summary>
    /// The kernel opens /dev/console as init's 0, 1 and 2 when the initramfs has that node (the
    /// built-in part always does). If it did not, the first files we open would land on 0-2 and
    /// every child would inherit them as its stdio; fill any gap with the console.
    /// </summary>
    private static void EnsureStandardDescriptors()
    {
        if (FileDescriptors.IsOpen(0) && FileDescriptors.IsOpen(1) && FileDescriptors.IsOpen(2))
        {
            return;
        }

        // Deliberately without O_CLOEXEC: these become 0-2.
        var console = Libc.open("/dev/console", O_RDWR | O_NOCTTY, 0);
        if (console < 0)
        {
            console = Libc.open("/dev/null", O_RDWR, 0);
        }

        for (var fd = 0; fd <= 2; fd++)
        {
            if (!FileDescriptors.IsOpen(fd))
            {
                _ = Libc.dup2(console, fd);
            }
        }

        if (console > 2)
        {
            _ = Libc.close(console);
        }
    }

    private static string Uptime()
    {
        try
        {
            return File.ReadAllText("/proc/uptime").Split(' ')[0] + " s";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
