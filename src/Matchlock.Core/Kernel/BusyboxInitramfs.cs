using System.Text;

namespace Matchlock.Core.Kernel;

/// <summary>
/// A trivial initramfs (static busybox + a shell /init that prints a marker and powers off),
/// used by the real-boot test and the boot-floor benchmark. It measures what the VMM and
/// kernel cost before our guest binary runs. Not used to run sandboxes.
/// </summary>
internal static class BusyboxInitramfs
{
    public const string Marker = "MATCHLOCK-BOOT-MARKER";

    /// <param name="output">Archive to write.</param>
    /// <param name="busyboxPath">A <em>static</em> busybox (Debian busybox-static: /bin/busybox).</param>
    /// <param name="modules">
    /// Optional: also pack these modules (same layout as the real initramfs) and insmod them
    /// before the marker, to measure module loading cost.
    /// </param>
    public static async Task WriteAsync(
        string output, string busyboxPath, (GuestKernel Kernel, IReadOnlyList<string> Names)? modules, CancellationToken cancellationToken)
    {
        var script = new StringBuilder("#!/bin/busybox sh\n");
        await using var cpio = new CpioWriter(new FileStream(output, FileMode.Create, FileAccess.Write));
        await cpio.AddDirectoryAsync("dev", 0x1ED, cancellationToken);
        await cpio.AddDirectoryAsync("proc", 0x1ED, cancellationToken);
        await cpio.AddCharDeviceAsync("dev/console", 0x180, 5, 1, cancellationToken);
        await cpio.AddHostFileAsync("bin/busybox", busyboxPath, 0x1ED, cancellationToken);
        await cpio.AddSymlinkAsync("bin/sh", "busybox", cancellationToken);
        if (modules is { } m)
        {
            var list = new StringBuilder();
            foreach (var rel in ModuleResolver.Load(m.Kernel.ModulesDir).Resolve(m.Names))
            {
                var inArchive = $"lib/modules/{m.Kernel.Version}/{rel}";
                await cpio.AddHostFileAsync(inArchive, Path.Combine(m.Kernel.ModulesDir, rel), 0x1A4, cancellationToken);
                list.Append('/').Append(inArchive).Append('\n');
            }

            await cpio.AddFileAsync("etc/matchlock/modules", Encoding.UTF8.GetBytes(list.ToString()), 0x1A4, cancellationToken);
            script.Append("for m in $(/bin/busybox cat /etc/matchlock/modules); do /bin/busybox insmod $m; done\n");
        }

        script.Append("/bin/busybox mount -t proc proc /proc\n")
            .Append("echo \"").Append(Marker).Append(" uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime)\" > /dev/console\n")
            .Append("/bin/busybox poweroff -f\n");
        await cpio.AddFileAsync("init", Encoding.UTF8.GetBytes(script.ToString()), 0x1ED, cancellationToken);
        await cpio.FinishAsync(cancellationToken);
    }
}
