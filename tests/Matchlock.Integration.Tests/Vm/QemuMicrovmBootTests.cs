using Matchlock.Core.Kernel;
using Matchlock.Core.Vm;

namespace Matchlock.Integration.Tests.Vm;

/// <summary>
/// Real boots under TCG (docs/PLATFORM.md "Boot": ~2 s each). They prove the backend's QEMU command line boots
/// the cloud kernel, the serial console reaches the log, a guest power-off ends QEMU, and that
/// disposal leaves no process or socket behind. Needs <see cref="HostNeeds.Qemu"/> (skipped without
/// it, failed under MATCHLOCK_REQUIRE_VM=1); no image, no CLI, no root.
/// </summary>
public sealed class QemuMicrovmBootTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("ml-boot-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static GuestKernel RequireVmPrerequisites(QemuMicrovmBackend backend)
    {
        HostPrerequisites.Ensure(HostNeeds.Qemu);
        Assert.True(backend.IsAvailable, "qemu-system-x86_64 is on the PATH but the backend does not find it");
        return new KernelProvider().Find();
    }

    private async Task<VmSpec> FloorSpecAsync(GuestKernel kernel, CancellationToken ct)
    {
        var initrd = Path.Combine(_dir.FullName, "floor.cpio");
        await BusyboxInitramfs.WriteAsync(initrd, "/bin/busybox", null, ct);
        var d = _dir.FullName;
        return new VmSpec(
            "boottest", kernel.KernelPath, initrd, "", 1, 256, [],
            Path.Combine(d, "chan.sock"), Path.Combine(d, "vm.log"), Path.Combine(d, "qmp.sock"), d, VmAccel.Tcg);
    }

    private static void AssertNothingLeft(VmSpec spec, int pid)
    {
        Assert.False(Directory.Exists($"/proc/{pid}"), $"QEMU pid {pid} still exists");
        Assert.False(File.Exists(spec.ChannelSocketPath), "channel socket left behind");
        Assert.False(File.Exists(spec.QmpSocketPath), "QMP socket left behind");
        Assert.False(File.Exists(Path.Combine(spec.WorkDir, "qemu.pid")), "pid file left behind");
    }

    [Fact]
    public async Task Busybox_guest_boots_prints_its_marker_and_powers_off()
    {
        var backend = new QemuMicrovmBackend();
        var kernel = RequireVmPrerequisites(backend);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(60));
        var spec = await FloorSpecAsync(kernel, cts.Token);

        int pid;
        await using (var vm = await backend.StartAsync(spec, cts.Token))
        {
            pid = vm.Pid;
            Assert.Equal($"{pid}\n", await File.ReadAllTextAsync(Path.Combine(spec.WorkDir, "qemu.pid"), cts.Token));
            Assert.False(File.Exists(spec.ChannelSocketPath), "the channel socket is unlinked once QEMU is connected");
            var code = await vm.WaitForExitAsync(cts.Token);
            Assert.True(code == 0, $"QEMU exit code {code}; console:\n{vm.ReadConsoleTail(30)}");
            Assert.Contains(BusyboxInitramfs.Marker, vm.ReadConsoleTail(50), StringComparison.Ordinal);
        }

        AssertNothingLeft(spec, pid);
    }

    [Fact]
    public async Task Disposing_a_running_vm_kills_qemu_and_cleans_up()
    {
        var backend = new QemuMicrovmBackend();
        var kernel = RequireVmPrerequisites(backend);
        var ct = TestContext.Current.CancellationToken;
        var spec = await FloorSpecAsync(kernel, ct);

        var vm = await backend.StartAsync(spec, ct);
        var pid = vm.Pid;
        Assert.True(Directory.Exists($"/proc/{pid}"));
        await vm.DisposeAsync();
        Assert.Equal(137, await vm.Exited); // 128 + SIGKILL
        AssertNothingLeft(spec, pid);
    }

    [Fact]
    public async Task Cancelling_the_start_leaves_nothing_running()
    {
        var backend = new QemuMicrovmBackend();
        var kernel = RequireVmPrerequisites(backend);
        var spec = await FloorSpecAsync(kernel, TestContext.Current.CancellationToken);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromMilliseconds(15)); // after the spawn, before QEMU is ready

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => backend.StartAsync(spec, cts.Token));
        Assert.False(File.Exists(spec.ChannelSocketPath));
        Assert.False(File.Exists(Path.Combine(spec.WorkDir, "qemu.pid")));
        Assert.DoesNotContain(
            Directory.EnumerateDirectories("/proc").Select(Path.GetFileName),
            p => int.TryParse(p, out _) && CmdlineContains(p!, spec.ChannelSocketPath));
    }

    private static bool CmdlineContains(string pid, string text)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains(text, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false; // the process exited while we looked: it is not running
        }
    }

    [Fact]
    public async Task Qemu_failing_at_start_reports_its_own_error()
    {
        var backend = new QemuMicrovmBackend();
        var kernel = RequireVmPrerequisites(backend);
        var ct = TestContext.Current.CancellationToken;
        var spec = await FloorSpecAsync(kernel, ct);
        var notAKernel = Path.Combine(_dir.FullName, "garbage");
        await File.WriteAllTextAsync(notAKernel, "this is not a kernel", ct);

        var ex = await Assert.ThrowsAsync<VmStartException>(() => backend.StartAsync(spec with { KernelPath = notAKernel }, ct));
        Assert.Contains("qemu: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("kernel", ex.Message, StringComparison.Ordinal); // QEMU's "linux kernel too old to load a ram disk"
        Assert.False(File.Exists(spec.ChannelSocketPath));
        Assert.False(File.Exists(Path.Combine(spec.WorkDir, "qemu.pid")));
    }

    [Fact]
    public async Task Tcg_probe_boot_reaches_the_kernel_panic_and_exits()
    {
        // The KVM probe's logic, exercised under TCG (KVM here is PVM and would hang).
        var backend = new QemuMicrovmBackend();
        var kernel = RequireVmPrerequisites(backend);
        var ok = await LinuxAccelHostView.ProbeAsync(
            "qemu-system-x86_64", kernel.KernelPath, VmAccel.Tcg, TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.True(ok);
    }
}
