using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Matchlock.Core.Vm;

namespace Matchlock.Bench.Floor;

/// <summary>What <c>--compare</c> (bench/boot/run.sh) runs.</summary>
internal sealed record BootCompareOptions(
    int Runs, int Warmup, AccelMode? Accel, int Cpus, int Mem, bool FloorModules,
    IReadOnlyList<string> Matchlock, string Image, bool Json);

/// <summary>One interleaved pair: a floor boot, then one <c>matchlock run --rm --image IMG -- true</c>.</summary>
internal sealed record Pair(int Index, FloorBoot Floor, double RunWallMs, IReadOnlyDictionary<string, long> Timings);

/// <summary>
/// The issue's benchmark: N × (floor boot i, then matchlock run i), interleaved so machine-load
/// drift hits both alike. The floor is timed from the QEMU spawn to QEMU's exit (this harness's own
/// start-up is outside it); the run from just before the CLI process is spawned to its exit, i.e.
/// what a user waits for, including the CLI's own process start-up.
/// </summary>
internal static partial class Compare
{
    /// <summary>Parts of the breakdown: key, label, what it covers.</summary>
    private static readonly (string Key, string Label, string Meaning)[] Parts =
    [
        ("host_setup", "host setup", "stale-VM sweep, image lookup, kernel + cached initramfs, accel choice, VM dir, upper disk (mke2fs)"),
        ("vmm_start", "VMM start", "QEMU spawn -> channel connected + QMP handshake (QEMU initialized)"),
        ("vmm_to_hello", "VMM -> hello", "QEMU ready -> guest hello received; = pre-clock + kernel + guest init (+ hello send)"),
        ("pre_clock", "  pre-clock", "vmm_to_hello - hello_uptime: QEMU loading kernel/initrd, decompression, time before the guest clock runs"),
        ("main_uptime", "  kernel", "guest uptime when matchlock-guest's Main ran (kernel boot incl. initramfs unpack)"),
        ("init_total", "  guest init", "guest's own phases until hello:"),
        ("modules", "    modules", "finit_module of the initramfs modules"),
        ("disks", "    disks", "finding the block devices by serial"),
        ("mounts", "    mounts", "EROFS + ext4 upper + overlay + /proc,/sys,/dev..."),
        ("configure", "configure", "configure request round trip (hostname, clock, cpu quota)"),
        ("total", "total", "Sandbox.CreateAsync: host setup .. configure"),
        ("outside_total", "outside total", "CLI wall - total: CLI process start + arg parsing, exec `true`, teardown (kill QEMU, delete VM dir), process exit"),
        ("cli_start", "  CLI start", "median wall of `matchlock version` (process + runtime start, no VM), measured after the pairs"),
        ("exec_teardown", "  exec+teardown", "outside total - CLI start (approximate: CLI start is a separate median)"),
    ];

    public static async Task<int> RunAsync(BootCompareOptions o, CancellationToken ct)
    {
        var log = o.Json ? Console.Error : Console.Out;
        var runArgs = new List<string>(o.Matchlock.Skip(1)) { "run", "--rm", "--image", o.Image };
        if (o.Accel is not null)
        {
            runArgs.AddRange(["--accel", o.Accel.Value.ToString().ToLowerInvariant()]);
        }

        if (o.Mem != 512)
        {
            runArgs.AddRange(["--memory", o.Mem.ToString(CultureInfo.InvariantCulture)]);
        }

        if (o.Cpus != 1)
        {
            runArgs.AddRange(["--cpus", o.Cpus.ToString(CultureInfo.InvariantCulture)]);
        }

        runArgs.AddRange(["--", "true"]);

        using var floor = await FloorMachine.CreateAsync(o.Accel, o.Cpus, o.Mem, o.FloorModules, ct);
        var started = DateTimeOffset.Now;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"bench/boot: {o.Runs} interleaved pairs (floor i, then run i) after {o.Warmup} discarded warm-up pair(s); {started:yyyy-MM-dd HH:mm zzz}, {Environment.ProcessorCount} host CPUs"));
        log.WriteLine($"floor: {floor.Describe()}");
        log.WriteLine("floor: qemu-system-x86_64 " + string.Join(' ', floor.Arguments.Select(Stats.Quote)));
        var runCommand = o.Matchlock[0] + " " + string.Join(' ', runArgs.Select(Stats.Quote));
        log.WriteLine($"run:   MATCHLOCK_DEBUG_TIMINGS=1 {runCommand}");

        var pairs = new List<Pair>();
        for (var i = 1 - o.Warmup; i <= o.Runs; i++)
        {
            var f = await floor.BootAsync(ct);
            var (wall, timings) = await RunCliAsync(o.Matchlock[0], runArgs, ct);
            var label = i <= 0 ? "warm-up" : $"pair {i,3}";
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{label}: floor {f.ExitMs,5:0} ms (ready {f.ReadyMs,3:0}, marker {f.MarkerMs,5:0}, guest uptime {f.GuestUptime} s)   run {wall,5:0} ms (total {Get(timings, "total"),5:0}, outside {wall - Get(timings, "total"),4:0})"));
            if (i > 0)
            {
                pairs.Add(new Pair(i, f, wall, timings));
            }
        }

        var cliStart = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            cliStart.Add((await RunCliAsync(o.Matchlock[0], [.. o.Matchlock.Skip(1), "version"], ct, expectTimings: false)).WallMs);
        }

        var floorExit = pairs.Select(p => p.Floor.ExitMs).ToList();
        var floorMarker = pairs.Select(p => p.Floor.MarkerMs).ToList();
        var runWall = pairs.Select(p => p.RunWallMs).ToList();
        var parts = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        foreach (var (key, _, _) in Parts)
        {
            parts[key] = [];
        }

        foreach (var p in pairs)
        {
            var t = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (k, v) in p.Timings)
            {
                t[k] = v;
            }

            if (p.Timings.ContainsKey("hello_uptime"))
            {
                t["pre_clock"] = t["vmm_to_hello"] - t["hello_uptime"];
            }
            else if (p.Timings.ContainsKey("kernel") && p.Timings.ContainsKey("guest_init"))
            {
                // Older CLI: its kernel is hello uptime - guest init, so the two add up to hello uptime.
                t["pre_clock"] = t["vmm_to_hello"] - t["kernel"] - t["guest_init"];
            }

            if (!p.Timings.ContainsKey("main_uptime") && p.Timings.ContainsKey("kernel"))
            {
                t["main_uptime"] = t["kernel"]; // older CLI: no guest phases, its "kernel" is the same idea
            }

            if (!p.Timings.ContainsKey("init_total") && p.Timings.ContainsKey("guest_init"))
            {
                t["init_total"] = t["guest_init"];
            }

            t["outside_total"] = p.RunWallMs - t.GetValueOrDefault("total");
            t["cli_start"] = Stats.Median(cliStart);
            t["exec_teardown"] = t["outside_total"] - t["cli_start"];
            foreach (var (key, _, _) in Parts)
            {
                if (t.TryGetValue(key, out var v))
                {
                    parts[key].Add(v);
                }
            }
        }

        double fMed = Stats.Median(floorExit), fP95 = Stats.Percentile(floorExit, 95);
        double rMed = Stats.Median(runWall), rP95 = Stats.Percentile(runWall, 95);
        var pairRatios = pairs.Select(p => p.RunWallMs / p.Floor.ExitMs).ToList();
        const double target = 1.25;
        var met = rMed / fMed <= target && rP95 / fP95 <= target;

        if (o.Json)
        {
            var doc = new
            {
                date = started.ToString("O", CultureInfo.InvariantCulture),
                hostCpus = Environment.ProcessorCount,
                floor = new { description = floor.Describe(), arguments = floor.Arguments, medianMs = fMed, p95Ms = fP95, markerMedianMs = Stats.Median(floorMarker) },
                run = new { command = runCommand, medianMs = rMed, p95Ms = rP95 },
                ratio = new { median = rMed / fMed, p95 = rP95 / fP95, pairMedian = Stats.Median(pairRatios), target, met },
                breakdown = Parts.Where(p => parts[p.Key].Count > 0).ToDictionary(
                    p => p.Key, p => new { medianMs = Stats.Median(parts[p.Key]), p95Ms = Stats.Percentile(parts[p.Key], 95), meaning = p.Meaning }),
                cliStartMs = cliStart,
                pairs = pairs.Select(p => new
                {
                    index = p.Index,
                    floorReadyMs = p.Floor.ReadyMs,
                    floorMarkerMs = p.Floor.MarkerMs,
                    floorExitMs = p.Floor.ExitMs,
                    floorGuestUptime = p.Floor.GuestUptime,
                    runWallMs = p.RunWallMs,
                    timings = p.Timings,
                }),
            };
            Console.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }

        var w = Console.Out;
        w.WriteLine();
        w.WriteLine("                                  median      p95   (nearest rank)");
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"floor  (QEMU spawn -> exit)      {fMed,6:0} ms {fP95,6:0} ms   (spawn -> marker: median {Stats.Median(floorMarker):0} ms)"));
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run    (CLI exec -> exit)        {rMed,6:0} ms {rP95,6:0} ms"));
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio  run/floor                 {rMed / fMed,6:0.00}    {rP95 / fP95,6:0.00}      (median of per-pair ratios {Stats.Median(pairRatios):0.00}); target <= {target:0.00}: {(met ? "met" : "NOT met")}"));
        w.WriteLine();
        w.WriteLine("breakdown of run (each part's own median / p95 over the pairs, ms; medians do not add up exactly):");
        foreach (var (key, label, meaning) in Parts)
        {
            var v = parts[key];
            if (v.Count == 0)
            {
                w.WriteLine($"  {label,-16}      n/a          {meaning} (not reported by this CLI)");
                continue;
            }

            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {label,-16} {Stats.Median(v),6:0} {Stats.Percentile(v, 95),6:0}   {meaning}"));
        }

        return 0;
    }

    private static double Get(IReadOnlyDictionary<string, long> t, string key) => t.TryGetValue(key, out var v) ? v : double.NaN;

    /// <summary>Runs the CLI once; wall time from just before the spawn to its exit.</summary>
    private static async Task<(double WallMs, IReadOnlyDictionary<string, long> Timings)> RunCliAsync(
        string program, IEnumerable<string> args, CancellationToken ct, bool expectTimings = true)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["MATCHLOCK_DEBUG_TIMINGS"] = "1";
        var sw = Stopwatch.StartNew();
        using var proc = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {program}");
        proc.StandardInput.Close();
        var stdout = proc.StandardOutput.ReadToEndAsync(ct);
        var stderr = proc.StandardError.ReadToEndAsync(ct);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromSeconds(120));
        try
        {
            await proc.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            proc.Kill(entireProcessTree: true);
            throw;
        }

        var wall = sw.Elapsed.TotalMilliseconds;
        var err = await stderr;
        await stdout;
        if (proc.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', psi.ArgumentList)} exited with {proc.ExitCode}:\n{err}");
        }

        var timings = new Dictionary<string, long>(StringComparer.Ordinal);
        var line = err.Split('\n').FirstOrDefault(l => l.StartsWith("matchlock: timings", StringComparison.Ordinal));
        if (line is not null)
        {
            foreach (Match m in KeyValue().Matches(line))
            {
                timings[m.Groups[1].Value] = long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }
        else if (expectTimings)
        {
            throw new InvalidOperationException($"no 'matchlock: timings' line on stderr (MATCHLOCK_DEBUG_TIMINGS=1 unsupported?):\n{err}");
        }

        return (wall, timings);
    }

    [GeneratedRegex(@"(\w+)=(\d+)")]
    private static partial Regex KeyValue();
}
