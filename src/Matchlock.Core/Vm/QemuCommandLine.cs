using System.Globalization;
using System.Text;

namespace Matchlock.Core.Vm;

/// <summary>
/// The one place that turns a <see cref="VmSpec"/> into QEMU arguments, so the backend, the
/// KVM probe and the boot-floor benchmark run exactly the same machine.
/// </summary>
internal static partial class QemuCommandLine
{
    /// <summary>Channel port name; the guest looks for it in /sys/class/virtio-ports (CONTRACTS).</summary>
    public const string ChannelName = "matchlock";

    /// <summary>
    /// Boot-time flags as measured (docs/PLATFORM.md "Boot": 1.73 s vs 2.01 s median to /init
    /// under TCG). <c>mitigations=off</c>: kept. The guest is single-tenant and holds no secrets
    /// (docs/ARCHITECTURE.md "Trust zones": secrets live only in host memory); these mitigations
    /// protect guest processes from each other and the guest kernel from guest users, not the host
    /// from the guest. The host's protection against a guest is the host kernel's and the VMM's
    /// (and under TCG guest code is not even executed natively). A caller that wants them back appends
    /// <c>mitigations=auto</c> in <see cref="VmSpec.ExtraKernelCmdline"/> (last one wins).
    /// </summary>
    public const string TunedFlags =
        "quiet i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check " +
        "cryptomgr.notests rcupdate.rcu_expedited=1 mitigations=off audit=0 apparmor=0 " +
        "random.trust_cpu=on 8250.nr_uarts=1";

    public static string KernelCmdline(VmSpec spec, long hostTscKhz)
    {
        // reboot=t + panic=-1 + -no-reboot: any guest reboot or panic ends the QEMU process
        // (CONTRACTS power-off: the guest calls reboot(RB_AUTOBOOT)).
        var sb = new StringBuilder("console=ttyS0 reboot=t panic=-1 ").Append(TunedFlags);
        if (spec.Accel == VmAccel.Tcg)
        {
            // docs/PLATFORM.md "Boot": under TCG without tsc_early_khz, 2 of 7 boots hung calibrating the TSC.
            sb.Append(" tsc_early_khz=").Append(hostTscKhz.ToString(CultureInfo.InvariantCulture));
        }

        sb.Append(" matchlock.channel=").Append(ChannelName);
        if (!string.IsNullOrWhiteSpace(spec.ExtraKernelCmdline))
        {
            sb.Append(' ').Append(spec.ExtraKernelCmdline.Trim());
        }

        return sb.ToString();
    }

    public static IReadOnlyList<string> Build(VmSpec spec, long hostTscKhz)
    {
        var virtiofs = spec.VirtiofsDevices.Count > 0;
        var args = new List<string>(64)
        {
            "-name", Escape($"matchlock-{spec.Id}"),
            // docs/PLATFORM.md "Boot" and "Guest kernel": microvm must keep its PIT under TCG; its
            // virtio-mmio devices are described to the guest through ACPI (no VIRTIO_MMIO_CMDLINE_DEVICES in the
            // cloud kernel), so acpi=on is required. Under KVM the machine defaults apply.
            // A vhost-user back-end reads guest RAM itself: it must be a shared memfd (docs/VFS.md "vhost-user transport").
            "-M", (spec.Accel == VmAccel.Tcg ? "microvm,pit=on,acpi=on" : "microvm,acpi=on") + (virtiofs ? ",memory-backend=mem" : ""),
            "-accel", spec.Accel == VmAccel.Tcg ? "tcg" : "kvm",
            // docs/PLATFORM.md "Acceleration": -cpu host fails on PVM; real KVM hosts want host, TCG wants max.
            "-cpu", spec.Accel == VmAccel.Tcg ? "max" : "host",
            "-smp", spec.Cpus.ToString(CultureInfo.InvariantCulture),
            "-m", spec.MemoryMb.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-chardev", $"file,id=console,path={Escape(spec.ConsoleLogPath)}",
            "-serial", "chardev:console",
            "-kernel", spec.KernelPath,
            "-initrd", spec.InitrdPath,
            "-append", KernelCmdline(spec, hostTscKhz),
        };

        if (virtiofs)
        {
            // docs/PLATFORM.md "Sharing host folders": virtio-fs needs a modern (virtio 1.x)
            // virtio-mmio transport; microvm's default is legacy, on which the guest's mount hangs.
            args.AddRange([
                "-object", $"memory-backend-memfd,id=mem,size={spec.MemoryMb.ToString(CultureInfo.InvariantCulture)}M,share=on",
                "-global", "virtio-mmio.force-legacy=false",
            ]);
            for (var i = 0; i < spec.VirtiofsDevices.Count; i++)
            {
                var fs = spec.VirtiofsDevices[i];
                args.AddRange([
                    "-chardev", $"socket,id=vfs{i},path={Escape(fs.SocketPath)}",
                    "-device", $"vhost-user-fs-device,chardev=vfs{i},tag={fs.Tag},queue-size={VirtiofsQueueSize}",
                ]);
            }
        }

        for (var i = 0; i < spec.Disks.Count; i++)
        {
            var d = spec.Disks[i];
            var cache = d.Cache switch
            {
                VmDiskCache.Unsafe => "unsafe",
                VmDiskCache.None => "none",
                _ => "writeback",
            };
            args.Add("-drive");
            args.Add($"if=none,format=raw,file={Escape(d.Path)},id=disk{i},readonly={(d.ReadOnly ? "on" : "off")},cache={cache}");
            args.Add("-device");
            args.Add($"virtio-blk-device,drive=disk{i},serial={d.Serial}");
        }

        if (spec.Network is { } net)
        {
            // docs/ARCHITECTURE.md D7: the tap lives in the sandbox's namespace, where QEMU runs, and is
            // attached by name. script=no/downscript=no: the host already configured it.
            // vhost=off: no /dev/vhost-net here (and TCG could not use it). virtio-net-device is
            // the virtio-mmio flavour microvm needs; the guest loads virtio_net when it sees it.
            args.AddRange([
                "-netdev", $"tap,id=net0,ifname={Escape(net.TapName)},script=no,downscript=no,vhost=off",
                "-device", $"virtio-net-device,netdev=net0,mac={net.MacAddress}",
            ]);
        }

        // docs/ARCHITECTURE.md D6, docs/PLATFORM.md "virtio-serial channel": virtio-serial port
        // backed by a socket the host already listens on (server=off avoids the start-up race).
        // id=chanport makes QEMU emit VSERPORT_CHANGE on QMP.
        args.AddRange([
            "-device", "virtio-serial-device",
            "-chardev", $"socket,id=chan,path={Escape(spec.ChannelSocketPath)},server=off",
            "-device", $"virtserialport,chardev=chan,name={ChannelName},id=chanport",
            "-qmp", $"unix:{Escape(spec.QmpSocketPath)},server=on,wait=off",
        ]);
        return args;
    }

    /// <summary>
    /// Arguments for the KVM probe: the same machine, no initrd, no devices. A working
    /// accelerator boots the kernel to its "unable to mount root" panic, and panic=-1 with
    /// -no-reboot makes QEMU exit 0 within a second. Under PVM a stock kernel never gets there.
    /// </summary>
    public static IReadOnlyList<string> BuildProbe(string kernelPath, string consoleLogPath, VmAccel accel, long hostTscKhz)
    {
        var spec = new VmSpec(
            "probe", kernelPath, "", "", 1, 128, [], "", consoleLogPath, "", "", accel);
        return
        [
            "-M", accel == VmAccel.Tcg ? "microvm,pit=on,acpi=on" : "microvm,acpi=on",
            "-accel", accel == VmAccel.Tcg ? "tcg" : "kvm",
            "-cpu", accel == VmAccel.Tcg ? "max" : "host",
            "-smp", "1", "-m", "128",
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-chardev", $"file,id=console,path={Escape(consoleLogPath)}",
            "-serial", "chardev:console",
            "-kernel", kernelPath,
            "-append", KernelCmdline(spec, hostTscKhz),
        ];
    }

    /// <summary>
    /// Descriptors per virtio-fs queue: the guest keeps this many requests in flight at most, and
    /// a 1 MiB READ or WRITE takes 256 page descriptors plus headers (QEMU's default is 128).
    /// </summary>
    public const int VirtiofsQueueSize = 1024;

    /// <summary>QEMU option values use ',' as separator; a literal comma is written ",,".</summary>
    internal static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>Rejects specs QEMU would misparse or the guest could not use, with a message that says which field.</summary>
    public static void Validate(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Cpus < 1)
        {
            throw new ArgumentException($"Cpus must be at least 1 (was {spec.Cpus})", nameof(spec));
        }

        if (spec.MemoryMb < 64)
        {
            throw new ArgumentException($"MemoryMb must be at least 64 (was {spec.MemoryMb})", nameof(spec));
        }

        foreach (var (path, what) in new[] { (spec.ChannelSocketPath, "ChannelSocketPath"), (spec.QmpSocketPath, "QmpSocketPath") }
            .Concat(spec.VirtiofsDevices.Select(d => (d.SocketPath, "a virtiofs SocketPath"))))
        {
            // sockaddr_un.sun_path is 108 bytes including the NUL.
            if (string.IsNullOrEmpty(path) || Encoding.UTF8.GetByteCount(path) > 107)
            {
                throw new ArgumentException($"{what} '{path}' must be a UNIX socket path of at most 107 bytes; use a shorter MATCHLOCK_HOME", nameof(spec));
            }
        }

        var serials = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in spec.Disks)
        {
            if (d.Serial.Length is 0 or > 20 || !d.Serial.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                throw new ArgumentException($"disk serial '{d.Serial}' must be 1-20 characters of [A-Za-z0-9._-]", nameof(spec));
            }

            if (!serials.Add(d.Serial))
            {
                throw new ArgumentException($"disk serial '{d.Serial}' is used twice; the guest identifies disks by serial", nameof(spec));
            }
        }

        if (spec.Network is { } net)
        {
            if (net.NamespaceName.Length is 0 or > 64 || !net.NamespaceName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                throw new ArgumentException($"network namespace '{net.NamespaceName}' must be 1-64 characters of [A-Za-z0-9._-]", nameof(spec));
            }

            if (net.TapName.Length is 0 or > 15 || !net.TapName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                throw new ArgumentException($"tap name '{net.TapName}' must be 1-15 characters of [A-Za-z0-9._-]", nameof(spec));
            }

            if (!MacPattern().IsMatch(net.MacAddress))
            {
                throw new ArgumentException($"MAC address '{net.MacAddress}' must look like 02:00:00:00:00:01", nameof(spec));
            }
        }

        var tags = new HashSet<string>(StringComparer.Ordinal);
        foreach (var fs in spec.VirtiofsDevices)
        {
            // virtio-fs config space holds 36 bytes of tag; ours are short and need no escaping.
            if (fs.Tag.Length is 0 or > 36 || !fs.Tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_') || !tags.Add(fs.Tag))
            {
                throw new ArgumentException($"virtiofs tag '{fs.Tag}' must be 1-36 characters of [A-Za-z0-9_-] and unique", nameof(spec));
            }
        }

        if (spec.ExtraKernelCmdline.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException("ExtraKernelCmdline must be a single line", nameof(spec));
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")]
    private static partial System.Text.RegularExpressions.Regex MacPattern();
}
