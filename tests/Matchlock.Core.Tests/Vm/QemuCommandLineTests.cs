using Matchlock.Core.Vm;

namespace Matchlock.Core.Tests.Vm;

public sealed class QemuCommandLineTests
{
    private const string Tuned =
        "quiet i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check cryptomgr.notests " +
        "rcupdate.rcu_expedited=1 mitigations=off audit=0 apparmor=0 random.trust_cpu=on 8250.nr_uarts=1";

    private static VmSpec Spec(VmAccel accel) => new(
        "vm1", "/k/vmlinuz", "/c/initramfs.cpio", "matchlock.debug=1", 2, 512,
        [new VmDisk("/i/root,1.erofs", "mlroot", ReadOnly: true), new VmDisk("/v/upper.ext4", "mlupper", ReadOnly: false) { Cache = VmDiskCache.Unsafe }],
        "/v/chan.sock", "/v/vm.log", "/v/qmp.sock", "/v", accel);

    private static string[] Common(string machine, string accel, string cpu, string append) =>
    [
        "-name", "matchlock-vm1",
        "-M", machine, "-accel", accel, "-cpu", cpu, "-smp", "2", "-m", "512",
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-chardev", "file,id=console,path=/v/vm.log", "-serial", "chardev:console",
        "-kernel", "/k/vmlinuz", "-initrd", "/c/initramfs.cpio", "-append", append,
        "-drive", "if=none,format=raw,file=/i/root,,1.erofs,id=disk0,readonly=on,cache=writeback",
        "-device", "virtio-blk-device,drive=disk0,serial=mlroot",
        "-drive", "if=none,format=raw,file=/v/upper.ext4,id=disk1,readonly=off,cache=unsafe",
        "-device", "virtio-blk-device,drive=disk1,serial=mlupper",
        "-device", "virtio-serial-device",
        "-chardev", "socket,id=chan,path=/v/chan.sock,server=off",
        "-device", "virtserialport,chardev=chan,name=matchlock,id=chanport",
        "-qmp", "unix:/v/qmp.sock,server=on,wait=off",
    ];

    [Fact]
    public void Tcg_keeps_the_pit_uses_cpu_max_and_passes_the_tsc_rate()
    {
        Assert.Equal(
            Common("microvm,pit=on,acpi=on", "tcg", "max",
                $"console=ttyS0 reboot=t panic=-1 {Tuned} tsc_early_khz=2596146 matchlock.channel=matchlock matchlock.debug=1"),
            QemuCommandLine.Build(Spec(VmAccel.Tcg), 2596146));
    }

    [Fact]
    public void Kvm_uses_cpu_host_and_no_tsc_override()
    {
        Assert.Equal(
            Common("microvm,acpi=on", "kvm", "host",
                $"console=ttyS0 reboot=t panic=-1 {Tuned} matchlock.channel=matchlock matchlock.debug=1"),
            QemuCommandLine.Build(Spec(VmAccel.Kvm), 2596146));
    }

    [Theory]
    [InlineData("mlroot,x")]
    [InlineData("")]
    [InlineData("a-serial-that-is-longer-than-20")]
    public void Bad_disk_serials_are_rejected(string serial)
    {
        var spec = Spec(VmAccel.Tcg) with { Disks = [new VmDisk("/d", serial, true)] };
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(spec));
    }

    [Fact]
    public void Duplicate_serials_and_long_socket_paths_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(
            Spec(VmAccel.Tcg) with { Disks = [new VmDisk("/a", "mlroot", true), new VmDisk("/b", "mlroot", true)] }));
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(
            Spec(VmAccel.Tcg) with { ChannelSocketPath = "/" + new string('x', 120) }));
        QemuCommandLine.Validate(Spec(VmAccel.Tcg));
    }

    [Fact]
    public void Host_tsc_prefers_sysfs_then_cpu_mhz()
    {
        var files = new Dictionary<string, string>
        {
            ["/proc/cpuinfo"] = "processor\t: 0\ncpu MHz\t\t: 2596.146\ncpu MHz\t\t: 1200.000\n",
        };
        Assert.Equal(2596146, HostTsc.ReadKhz(files.ContainsKey, p => files[p]));
        files["/sys/devices/system/cpu/cpu0/tsc_freq_khz"] = "2600000\n";
        Assert.Equal(2600000, HostTsc.ReadKhz(files.ContainsKey, p => files[p]));
        Assert.Throws<InvalidOperationException>(() => HostTsc.ReadKhz(_ => false, _ => ""));
    }

    [Fact]
    public void A_network_attachment_adds_a_tap_netdev_and_a_virtio_mmio_nic_before_the_channel()
    {
        var spec = Spec(VmAccel.Tcg) with { Network = new VmNetworkAttachment("matchlock-vm1", "tap0", "02:11:22:33:44:55") };
        var args = QemuCommandLine.Build(spec, 2596146).ToList();
        var at = args.IndexOf("-netdev");
        Assert.Equal("tap,id=net0,ifname=tap0,script=no,downscript=no,vhost=off", args[at + 1]);
        Assert.Equal(["-device", "virtio-net-device,netdev=net0,mac=02:11:22:33:44:55"], args[(at + 2)..(at + 4)]);
        QemuCommandLine.Validate(spec);
    }

    [Fact]
    public void Virtiofs_devices_make_ram_a_shared_memfd_and_virtio_mmio_modern_and_only_then()
    {
        var spec = Spec(VmAccel.Tcg) with { VirtiofsDevices = [new VmVirtiofsDevice("/v/vfs0.sock", "ml0"), new VmVirtiofsDevice("/v/vfs,1.sock", "ml1")] };
        var args = QemuCommandLine.Build(spec, 1);
        Assert.Equal("microvm,pit=on,acpi=on,memory-backend=mem", args[args.ToList().IndexOf("-M") + 1]);
        var at = args.ToList().IndexOf("-object");
        Assert.Equal(
            ["-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-global", "virtio-mmio.force-legacy=false",
             "-chardev", "socket,id=vfs0,path=/v/vfs0.sock", "-device", "vhost-user-fs-device,chardev=vfs0,tag=ml0,queue-size=1024",
             "-chardev", "socket,id=vfs1,path=/v/vfs,,1.sock", "-device", "vhost-user-fs-device,chardev=vfs1,tag=ml1,queue-size=1024"],
            args.Skip(at).Take(12));
        QemuCommandLine.Validate(spec);

        var plain = QemuCommandLine.Build(Spec(VmAccel.Tcg), 1);
        Assert.DoesNotContain(plain, a => a.Contains("memory-backend", StringComparison.Ordinal) || a.Contains("force-legacy", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a,b")]
    [InlineData("0123456789012345678901234567890123456")]
    public void Bad_or_duplicate_virtiofs_tags_and_long_sockets_are_refused(string tag)
    {
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(Spec(VmAccel.Tcg) with { VirtiofsDevices = [new VmVirtiofsDevice("/v/vfs0.sock", tag)] }));
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(Spec(VmAccel.Tcg) with { VirtiofsDevices = [new VmVirtiofsDevice("/v/a.sock", "ml0"), new VmVirtiofsDevice("/v/b.sock", "ml0")] }));
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(Spec(VmAccel.Tcg) with { VirtiofsDevices = [new VmVirtiofsDevice("/" + new string('v', 110), "ml0")] }));
    }

    [Fact]
    public void Without_a_network_attachment_there_is_no_nic()
    {
        Assert.DoesNotContain("-netdev", QemuCommandLine.Build(Spec(VmAccel.Tcg), 2596146));
    }

    [Theory]
    [InlineData("matchlock-vm1", "tap0", "02:11:22:33:44")]
    [InlineData("matchlock vm1", "tap0", "02:11:22:33:44:55")]
    [InlineData("matchlock-vm1", "tap0,script=/x", "02:11:22:33:44:55")]
    public void Bad_network_attachments_are_refused(string ns, string tap, string mac)
    {
        var spec = Spec(VmAccel.Tcg) with { Network = new VmNetworkAttachment(ns, tap, mac) };
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Validate(spec));
    }
}
