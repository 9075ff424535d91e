using System.Diagnostics;
using System.Globalization;
using Matchlock.Core.Kernel;
using Matchlock.Core.Vm;

// Boot floor: N boots of the busybox initramfs (print marker, power off) through
// QemuMicrovmBackend, i.e. the same QEMU arguments, kernel and accelerator choice as real VMs.
// Measures wall time from StartAsync (spawn) to the marker on the console and to QEMU's exit.
// Usage: Matchlock.Bench.Floor [N=20] [--modules] [--accel auto|kvm|tcg] [--cpus 1] [--mem 256]
var runs = 20;
var withModules = false;
AccelMode? accelMode = null;
int cpus = 1, mem = 256;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--modules": withModules = true; break;
        case "--accel": accelMode = AccelSelector.ParseMode(args[++i]); break;
        case "--cpus": cpus = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--mem": mem = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default: runs = int.Parse(args[i], CultureInfo.InvariantCulture); break;
    }
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var ct = cts.Token;

var kernel = new KernelProvider().Find();
var accel = await new AccelSelector(kernel.KernelPath).SelectAsync(accelMode, ct);
if (accel.Notice is not null)
{
    Console.Error.WriteLine(accel.Notice);
}

var dir = Directory.CreateTempSubdirectory("ml-floor-");
try
{
    var initrd = Path.Combine(dir.FullName, "floor.cpio");
    await BusyboxInitramfs.WriteAsync(initrd, "/bin/busybox", withModules ? (kernel, ModuleResolver.DefaultModules) : null, ct);
    var spec = new VmSpec(
        "floor", kernel.KernelPath, initrd, "", cpus, mem, [],
        Path.Combine(dir.FullName, "chan.sock"), Path.Combine(dir.FullName, "vm.log"), Path.Combine(dir.FullName, "qmp.sock"),
        dir.FullName, accel.Accel);
    var backend = new QemuMicrovmBackend();
    Console.WriteLine($"kernel {kernel.Version}, accel {accel.Accel}, modules {(withModules ? "default set" : "none")}, {runs} runs");
    Console.WriteLine("qemu-system-x86_64 " + string.Join(' ', backend.GetArguments(spec).Select(Quote)));

    var toMarker = new List<double>();
    var toExit = new List<double>();
    for (var run = 1; run <= runs; run++)
    {
        File.Delete(spec.ConsoleLogPath);
        var sw = Stopwatch.StartNew();
        await using var vm = await backend.StartAsync(spec, ct);
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
            Console.Error.WriteLine($"run {run}: exit {code}, marker {(marker is null ? "missing" : "seen")}\n{vm.ReadConsoleTail(20)}");
            return 1;
        }

        toMarker.Add(marker.Value);
        toExit.Add(exit);
        var uptime = line is null ? "?" : line[(line.IndexOf("uptime=", StringComparison.Ordinal) + 7)..];
        Console.WriteLine(FormattableString.Invariant(
            $"run {run,3}: ready {started,6:0} ms  marker {marker.Value,6:0} ms  exit {exit,6:0} ms  guest uptime at marker {uptime} s"));
    }

    Console.WriteLine(FormattableString.Invariant($"start->marker: median {Percentile(toMarker, 50):0} ms, p95 {Percentile(toMarker, 95):0} ms"));
    Console.WriteLine(FormattableString.Invariant($"start->exit:   median {Percentile(toExit, 50):0} ms, p95 {Percentile(toExit, 95):0} ms"));
    return 0;
}
finally
{
    dir.Delete(recursive: true);
}

// Nearest-rank percentile.
static double Percentile(List<double> values, int p)
{
    var sorted = values.Order().ToList();
    var rank = (int)Math.Ceiling(p / 100.0 * sorted.Count);
    return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
}

static string Quote(string a) => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a;
