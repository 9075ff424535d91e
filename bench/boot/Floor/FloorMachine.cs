using System.Diagnostics;
using System.Globalization;
using Matchlock.Core.Kernel;
using Matchlock.Core.Vm;

namespace Matchlock.Bench.Floor;

/// <summary>One floor boot: spawn → QEMU ready, → marker on the console, → QEMU exited (ms).</summary>
internal sealed record FloorBoot(double ReadyMs, double MarkerMs, double ExitMs, string GuestUptime);

/// <summary>
/// The floor machine: the backend's exact QEMU command line (QemuMicrovmBackend, same kernel and
/// accelerator choice) booting a trivial busybox initramfs that prints a marker and powers off.
/// Owns a temporary directory for the initramfs, sockets and console log.
/// </summary>
internal sealed class FloorMachine : IDisposable
{
    private readonly DirectoryInfo _dir;
    private readonly QemuMicrovmBackend _backend = new();

    private FloorMachine(DirectoryInfo dir, GuestKernel kernel, AccelChoice accel, VmSpec spec, bool modules)
    {
        _dir = dir;
        Kernel = kernel;
        Accel = accel;
        Spec = spec;
        WithModules = modules;
    }

    public GuestKernel Kernel { get; }

    public AccelChoice Accel { get; }

    public VmSpec Spec { get; }

    public bool WithModules { get; }

    public IReadOnlyList<string> Arguments => _backend.GetArguments(Spec);

    public static async Task<FloorMachine> CreateAsync(AccelMode? accelMode, int cpus, int mem, bool withModules, CancellationToken ct)
    {
        var kernel = new KernelProvider().Find();
        var accel = await new AccelSelector(kernel.KernelPath).SelectAsync(accelMode, ct);
        var dir = Directory.CreateTempSubdirectory("ml-floor-");
        try
        {
            var initrd = Path.Combine(dir.FullName, "floor.cpio");
            await BusyboxInitramfs.WriteAsync(initrd, "/bin/busybox", withModules ? (kernel, ModuleResolver.DefaultModules) : null, ct);
            var spec = new VmSpec(
                "floor", kernel.KernelPath, initrd, "", cpus, mem, [],
                Path.Combine(dir.FullName, "chan.sock"), Path.Combine(dir.FullName, "vm.log"), Path.Combine(dir.FullName, "qmp.sock"),
                dir.FullName, accel.Accel);
            return new FloorMachine(dir, kernel, accel, spec, withModules);
        }
        catch
        {
            dir.Delete(recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Boots once. All times are measured from just before <c>StartAsync</c> (the QEMU spawn), so
    /// nothing of this process's own start-up is inside them.
    /// </summary>
    public async Task<FloorBoot> BootAsync(CancellationToken ct)
    {
        File.Delete(Spec.ConsoleLogPath);
        var sw = Stopwatch.StartNew();
        await using var vm = await _backend.StartAsync(Spec, ct);
        var started = sw.Elapsed.TotalMilliseconds;
        double? marker = null;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromSeconds(60));
        while (!vm.Exited.IsCompleted && marker is null)
        {
            if (vm.ReadConsoleTail(5).Contains(BusyboxInitramfs.Marker, StringComparison.Ordinal))
            {
                marker = sw.Elapsed.TotalMilliseconds;
                break;
            }

            await Task.Delay(2, bound.Token);
        }

        var code = await vm.WaitForExitAsync(bound.Token);
        var exit = sw.Elapsed.TotalMilliseconds;
        var line = vm.ReadConsoleTail(5).Split('\n').FirstOrDefault(l => l.Contains(BusyboxInitramfs.Marker, StringComparison.Ordinal));
        marker ??= line is null ? null : exit; // printed and powered off between two polls
        if (code != 0 || marker is null)
        {
            throw new InvalidOperationException($"floor boot: QEMU exit {code}, marker {(marker is null ? "missing" : "seen")}\n{vm.ReadConsoleTail(20)}");
        }

        var uptime = line is null ? "?" : line[(line.IndexOf("uptime=", StringComparison.Ordinal) + 7)..].Trim();
        return new FloorBoot(started, marker.Value, exit, uptime);
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"kernel {Kernel.Version}, accel {Accel.Accel}, {Spec.Cpus} vCPU, {Spec.MemoryMb} MiB, modules {(WithModules ? "default set" : "none")}");

    public void Dispose() => _dir.Delete(recursive: true);
}

internal static class Stats
{
    /// <summary>Nearest-rank percentile.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, int p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    public static double Median(IReadOnlyCollection<double> values) => Percentile(values, 50);

    public static string Quote(string a) => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a;
}
