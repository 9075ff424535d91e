namespace Matchlock.Core.Vm;

/// <summary>The real host: /dev/kvm, sysfs, procfs, a cache file and a QEMU probe boot.</summary>
internal sealed class LinuxAccelHostView : IAccelHostView
{
    /// <summary>A working KVM boots to the panic in well under a second; PVM hangs.</summary>
    internal static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);

    private readonly string _kernelPath;
    private readonly string _cacheFile;
    private readonly string _qemu;

    public LinuxAccelHostView(string kernelPath, string cacheDir, string qemuBinary)
    {
        _kernelPath = kernelPath;
        _cacheFile = Path.Combine(cacheDir, "accel", "kvm-probe");
        _qemu = qemuBinary;
    }

    public bool IsKvmPvmLoaded => Directory.Exists("/sys/module/kvm_pvm");

    public string? BootId => File.Exists("/proc/sys/kernel/random/boot_id")
        ? File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim()
        : null;

    public string? GetEnvironmentVariable(string name) => Environment.GetEnvironmentVariable(name);

    public string? TryOpenKvm()
    {
        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }

    public string? ReadProbeCache() => File.Exists(_cacheFile) ? File.ReadAllText(_cacheFile) : null;

    public void WriteProbeCache(string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_cacheFile)!);
        var tmp = $"{_cacheFile}.tmp-{Environment.ProcessId}";
        File.WriteAllText(tmp, content);
        File.Move(tmp, _cacheFile, overwrite: true);
    }

    public Task<bool> ProbeKvmAsync(CancellationToken cancellationToken) =>
        ProbeAsync(_qemu, _kernelPath, VmAccel.Kvm, ProbeTimeout, cancellationToken);

    /// <summary>Boots <paramref name="kernelPath"/> without an initrd; success = QEMU exits 0 after the kernel's panic.</summary>
    internal static async Task<bool> ProbeAsync(string qemu, string kernelPath, VmAccel accel, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (ChildProcess.FindOnPath(qemu) is not { } qemuPath || !File.Exists(kernelPath))
        {
            return false;
        }

        var dir = Directory.CreateTempSubdirectory("matchlock-probe-");
        try
        {
            var console = Path.Combine(dir.FullName, "console.log");
            var args = QemuCommandLine.BuildProbe(kernelPath, console, accel, accel == VmAccel.Tcg ? HostTsc.Khz : 0);
            using var child = await ChildProcess.StartAsync(qemuPath, args, Path.Combine(dir.FullName, "qemu.err"), cancellationToken);
            try
            {
                var code = await child.Exited.WaitAsync(timeout, cancellationToken);
                return code == 0 && File.ReadAllText(console).Contains("Kernel panic", StringComparison.Ordinal);
            }
            catch (TimeoutException)
            {
                // Under PVM QEMU pauses on the emulation failure instead of exiting.
                return false;
            }
            finally
            {
                child.Kill();
                await child.Exited;
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
