using System.Globalization;
using Matchlock.Bench.Floor;
using Matchlock.Core.Vm;

// Boot floor: N boots of the busybox initramfs (print marker, power off) through
// QemuMicrovmBackend, i.e. the same QEMU arguments, kernel and accelerator choice as real VMs.
// Measures wall time from StartAsync (spawn) to the marker on the console and to QEMU's exit.
// Usage: Matchlock.Bench.Floor [N=20] [--runs N] [--modules] [--accel auto|kvm|tcg] [--cpus 1] [--mem 256]
//   --compare [--matchlock "CMD"] [--image busybox] [--warmup 1] [--json]
//       bench/boot/run.sh: N interleaved pairs (floor boot i, then `matchlock run --rm --image IMG -- true` i).
//   --channel-bytes BYTES [--channel-block 65536]
//       bench/stream baseline: raw guest->host virtio-serial throughput (N boots, default 3).
int? runs = null;
var withModules = false;
var compare = false;
var json = false;
var warmup = 1;
long channelBytes = 0;
var channelBlock = 65536;
AccelMode? accelMode = null;
int cpus = 1, mem = 256;
string[] matchlock = ["matchlock"];
var image = "busybox";
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--modules": withModules = true; break;
        case "--accel": accelMode = AccelSelector.ParseMode(args[++i]); break;
        case "--cpus": cpus = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--mem": mem = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--compare": compare = true; break;
        case "--json": json = true; break;
        case "--warmup": warmup = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--matchlock": matchlock = args[++i].Split(' ', StringSplitOptions.RemoveEmptyEntries); break;
        case "--channel-block": channelBlock = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--image": image = args[++i]; break;
        case "--channel-bytes": channelBytes = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default: runs = int.Parse(args[i], CultureInfo.InvariantCulture); break;
    }
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var ct = cts.Token;

if (channelBytes > 0)
{
    return await ChannelThroughput.RunAsync(channelBytes, channelBlock, runs ?? 3, accelMode, cpus, mem, ct);
}

if (compare)
{
    return await Compare.RunAsync(
        new BootCompareOptions(runs ?? 20, warmup, accelMode, cpus, mem, withModules, matchlock, image, json), ct);
}

var n = runs ?? 20;
using var floor = await FloorMachine.CreateAsync(accelMode, cpus, mem, withModules, ct);
if (floor.Accel.Notice is not null)
{
    Console.Error.WriteLine(floor.Accel.Notice);
}

Console.WriteLine($"kernel {floor.Kernel.Version}, accel {floor.Accel.Accel}, modules {(withModules ? "default set" : "none")}, {n} runs");
Console.WriteLine("qemu-system-x86_64 " + string.Join(' ', floor.Arguments.Select(Stats.Quote)));

var toMarker = new List<double>();
var toExit = new List<double>();
for (var run = 1; run <= n; run++)
{
    FloorBoot boot;
    try
    {
        boot = await floor.BootAsync(ct);
    }
    catch (InvalidOperationException ex)
    {
        Console.Error.WriteLine($"run {run}: {ex.Message}");
        return 1;
    }

    toMarker.Add(boot.MarkerMs);
    toExit.Add(boot.ExitMs);
    Console.WriteLine(FormattableString.Invariant(
        $"run {run,3}: ready {boot.ReadyMs,6:0} ms  marker {boot.MarkerMs,6:0} ms  exit {boot.ExitMs,6:0} ms  guest uptime at marker {boot.GuestUptime} s"));
}

Console.WriteLine(FormattableString.Invariant($"start->marker: median {Stats.Median(toMarker):0} ms, p95 {Stats.Percentile(toMarker, 95):0} ms"));
Console.WriteLine(FormattableString.Invariant($"start->exit:   median {Stats.Median(toExit):0} ms, p95 {Stats.Percentile(toExit, 95):0} ms"));
return 0;
