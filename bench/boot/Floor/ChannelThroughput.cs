using System.Diagnostics;
using System.Globalization;
using System.Text;
using Matchlock.Core.Kernel;
using Matchlock.Core.Vm;

namespace Matchlock.Bench.Floor;

/// <summary>
/// Raw guest→host channel throughput (the baseline of bench/stream): the floor machine — the
/// backend's QEMU command line, kernel and accel — boots a busybox initramfs with the default
/// modules (virtio_console among them) whose /init finds the <c>matchlock</c> virtio port and
/// <c>dd</c>s N bytes of zeros straight into it. The host reads <see cref="IVmInstance.Channel"/>
/// (the same socket stream the protocol runs on) and times first byte → last byte.
/// </summary>
internal static class ChannelThroughput
{
    private const string PortMarker = "MATCHLOCK-CHANNEL port=";
    private const string DoneMarker = "MATCHLOCK-CHANNEL-DONE uptime=";

    public static async Task<int> RunAsync(long bytes, int blockSize, int runs, AccelMode? accelMode, int cpus, int mem, CancellationToken ct)
    {
        if (blockSize <= 0 || bytes <= 0 || bytes % blockSize != 0)
        {
            Console.Error.WriteLine($"--channel-bytes must be a positive multiple of --channel-block ({blockSize})");
            return 2;
        }

        var kernel = new KernelProvider().Find();
        var accel = await new AccelSelector(kernel.KernelPath).SelectAsync(accelMode, ct);
        var dir = Directory.CreateTempSubdirectory("ml-chan-");
        try
        {
            var initrd = Path.Combine(dir.FullName, "chan.cpio");
            await WriteInitramfsAsync(initrd, kernel, blockSize, bytes / blockSize, ct);
            var spec = new VmSpec(
                "chan", kernel.KernelPath, initrd, "", cpus, mem, [],
                Path.Combine(dir.FullName, "chan.sock"), Path.Combine(dir.FullName, "vm.log"), Path.Combine(dir.FullName, "qmp.sock"),
                dir.FullName, accel.Accel);
            var backend = new QemuMicrovmBackend();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"raw channel: kernel {kernel.Version}, accel {accel.Accel}, {cpus} vCPU, {mem} MiB, modules {string.Join(',', ModuleResolver.DefaultModules)}; {runs} boots"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"raw channel: guest /init: dd if=/dev/zero of=/dev/<matchlock port> bs={blockSize} count={bytes / blockSize} ({bytes} bytes); host reads IVmInstance.Channel, 256 KiB reads"));

            var rates = new List<double>();
            for (var run = 1; run <= runs; run++)
            {
                File.Delete(spec.ConsoleLogPath);
                var sw = Stopwatch.StartNew();
                await using var vm = await backend.StartAsync(spec, ct);
                using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
                bound.CancelAfter(TimeSpan.FromSeconds(180));
                var buffer = new byte[256 * 1024];
                long total = 0;
                double first = 0;
                var reads = 0;
                while (total < bytes)
                {
                    int n;
                    try
                    {
                        n = await vm.Channel.ReadAsync(buffer, bound.Token);
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                        throw new InvalidOperationException($"run {run}: timed out after {total} of {bytes} bytes\n{vm.ReadConsoleTail(20)}");
                    }

                    if (n == 0)
                    {
                        throw new InvalidOperationException($"run {run}: channel closed after {total} of {bytes} bytes\n{vm.ReadConsoleTail(20)}");
                    }

                    if (total == 0)
                    {
                        first = sw.Elapsed.TotalMilliseconds;
                    }

                    total += n;
                    reads++;
                }

                var last = sw.Elapsed.TotalMilliseconds;
                // The guest prints its uptime around dd (10 ms resolution) once dd has returned.
                var ddLine = "";
                for (var i = 0; i < 100 && ddLine.Length == 0; i++)
                {
                    ddLine = vm.ReadConsoleTail(10).Split('\n').FirstOrDefault(l => l.Contains(DoneMarker, StringComparison.Ordinal))?.Trim() ?? "";
                    if (ddLine.Length == 0)
                    {
                        await Task.Delay(10, ct);
                    }
                }

                var guestDd = "?";
                var times = ddLine.Length == 0 ? [] : ddLine[(ddLine.IndexOf(DoneMarker, StringComparison.Ordinal) + DoneMarker.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (times.Length == 2
                    && double.TryParse(times[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var t0)
                    && double.TryParse(times[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var t1))
                {
                    guestDd = string.Create(CultureInfo.InvariantCulture, $"{(t1 - t0) * 1000:0} ms");
                }

                var port = vm.ReadConsoleTail(30).Split('\n').FirstOrDefault(l => l.Contains(PortMarker, StringComparison.Ordinal))?.Trim() ?? "";
                await vm.KillAsync(ct);
                if (total != bytes)
                {
                    throw new InvalidOperationException($"run {run}: got {total} bytes, expected {bytes}");
                }

                var mibps = bytes / 1048576.0 / ((last - first) / 1000);
                rates.Add(mibps);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"run {run}: {bytes} bytes first->last byte {last - first,6:0} ms = {mibps,6:0.0} MiB/s  ({reads} reads; spawn->first byte {first:0} ms; {port[(port.IndexOf(PortMarker, StringComparison.Ordinal) + PortMarker.Length)..]}; guest dd start->return {guestDd})"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"raw channel: median {Stats.Median(rates):0.0} MiB/s (min {rates.Min():0.0}, max {rates.Max():0.0}) over {runs} runs"));
            return 0;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static async Task WriteInitramfsAsync(string output, GuestKernel kernel, int blockSize, long count, CancellationToken ct)
    {
        await using var cpio = new CpioWriter(new FileStream(output, FileMode.Create, FileAccess.Write));
        foreach (var d in new[] { "dev", "proc", "sys" })
        {
            await cpio.AddDirectoryAsync(d, 0x1ED, ct);
        }

        await cpio.AddCharDeviceAsync("dev/console", 0x180, 5, 1, ct);
        await cpio.AddHostFileAsync("bin/busybox", "/bin/busybox", 0x1ED, ct);
        await cpio.AddSymlinkAsync("bin/sh", "busybox", ct);
        var list = new StringBuilder();
        foreach (var rel in ModuleResolver.Load(kernel.ModulesDir).Resolve(ModuleResolver.DefaultModules))
        {
            var inArchive = $"lib/modules/{kernel.Version}/{rel}";
            await cpio.AddHostFileAsync(inArchive, Path.Combine(kernel.ModulesDir, rel), 0x1A4, ct);
            list.Append('/').Append(inArchive).Append('\n');
        }

        await cpio.AddFileAsync("etc/matchlock/modules", Encoding.UTF8.GetBytes(list.ToString()), 0x1A4, ct);
        // No udev: the port shows up in sysfs (the device announces it through its control queue,
        // asynchronously) and devtmpfs creates /dev/vportNpM; wait for it.
        var script = $$"""
            #!/bin/busybox sh
            b=/bin/busybox
            $b mount -t devtmpfs devtmpfs /dev
            $b mount -t proc proc /proc
            $b mount -t sysfs sysfs /sys
            for m in $($b cat /etc/matchlock/modules); do $b insmod $m; done
            port=
            i=0
            while [ -z "$port" ] && [ $i -lt 500 ]; do
              for d in /sys/class/virtio-ports/*; do
                if [ "$($b cat $d/name 2>/dev/null)" = {{QemuCommandLine.ChannelName}} ] && [ -e /dev/$($b basename $d) ]; then port=/dev/$($b basename $d); fi
              done
              [ -z "$port" ] && $b usleep 10000
              i=$((i+1))
            done
            echo "{{PortMarker}}$port" > /dev/console
            t0=$($b cut -d' ' -f1 /proc/uptime)
            $b dd if=/dev/zero of=$port bs={{blockSize}} count={{count}} 2>/dev/null
            echo "{{DoneMarker}}$t0 $($b cut -d' ' -f1 /proc/uptime)" > /dev/console
            $b sleep 600
            """;
        await cpio.AddFileAsync("init", Encoding.UTF8.GetBytes(script + "\n"), 0x1ED, ct);
        await cpio.FinishAsync(ct);
    }
}
