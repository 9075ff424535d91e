using System.Diagnostics;
using System.Globalization;
using Matchlock.Core.Sandboxes;

// Guest->host streaming throughput through the real protocol: boots one sandbox (busybox image),
// then runs `head -c BYTES /dev/zero` RUNS times with Sandbox.ExecAsync, stdout into a counting
// sink. Per run: first stdout byte -> last stdout byte (comparable with the raw channel baseline,
// bench/boot/Floor --channel-bytes), and the whole ExecAsync call (request, spawn, stream, exit status).
// Usage: Matchlock.Bench.Stream [--bytes 104857600] [--runs 3] [--image busybox] [--cmd "SHELL COMMAND"]
//   --cmd runs `sh -c COMMAND` instead of head (it must write exactly --bytes to stdout), e.g.
//   "dd if=/dev/zero bs=65536 count=1600" to see the effect of the producer's write size.
long bytes = 104857600;
var runs = 3;
var image = "busybox";
string? command = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--bytes": bytes = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--image": image = args[++i]; break;
        case "--cmd": command = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
var ct = cts.Token;

var boot = Stopwatch.StartNew();
await using var sandbox = await Sandbox.CreateAsync(new SandboxSpec { Image = image }, cancellationToken: ct);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"protocol: sandbox {sandbox.Id} ({image}, {sandbox.Spec.Cpus} vCPU, {sandbox.Spec.MemoryMb} MiB) ready in {boot.Elapsed.TotalMilliseconds:0} ms; guest binary {GuestBinary.Locate()}"));
if (sandbox.AccelNotice is not null)
{
    Console.WriteLine($"protocol: {sandbox.AccelNotice}");
}

// Not throughput, but cheap to have here: one `true` through the protocol (request, spawn, exit
// status), the part of `matchlock run ... -- true` that bench/boot can only see inside "outside total".
var execTrue = new List<double>();
for (var i = 0; i < 5; i++)
{
    var sw = Stopwatch.StartNew();
    await sandbox.ExecAsync(new ExecSpec { Argv = ["true"] }, null, Stream.Null, Stream.Null, ct);
    execTrue.Add(sw.Elapsed.TotalMilliseconds);
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"protocol: ExecAsync([true]) round trip: median {Median(execTrue):0} ms (min {execTrue.Min():0}, max {execTrue.Max():0}, 5 runs)"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"protocol: {runs} x ExecAsync([{string.Join(", ", Argv())}]) stdout -> counting sink"));
var rates = new List<double>();
var callRates = new List<double>();
for (var run = 1; run <= runs; run++)
{
    var sink = new CountingStream();
    var sw = Stopwatch.StartNew();
    sink.Clock = sw;
    var result = await sandbox.ExecAsync(new ExecSpec { Argv = Argv() }, null, sink, Stream.Null, ct);
    var call = sw.Elapsed.TotalMilliseconds;
    if (sink.Count != bytes)
    {
        Console.Error.WriteLine($"run {run}: got {sink.Count} bytes, expected {bytes} (exit {result})");
        return 1;
    }

    var span = sink.LastMs - sink.FirstMs;
    var mibps = bytes / 1048576.0 / (span / 1000);
    var callMibps = bytes / 1048576.0 / (call / 1000);
    rates.Add(mibps);
    callRates.Add(callMibps);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"run {run}: {bytes} bytes first->last byte {span,6:0} ms = {mibps,6:0.0} MiB/s  (whole ExecAsync {call:0} ms = {callMibps:0.0} MiB/s; first byte after {sink.FirstMs:0} ms; {sink.Writes} writes)"));
}

var teardown = Stopwatch.StartNew();
await sandbox.DisposeAsync();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"protocol: sandbox DisposeAsync (--rm teardown: kill QEMU, delete VM dir) {teardown.Elapsed.TotalMilliseconds:0} ms"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"protocol: median {Median(rates):0.0} MiB/s first->last byte (min {rates.Min():0.0}, max {rates.Max():0.0}); whole call median {Median(callRates):0.0} MiB/s"));
return 0;

string[] Argv() => command is null ? ["head", "-c", bytes.ToString(CultureInfo.InvariantCulture), "/dev/zero"] : ["sh", "-c", command];

static double Median(List<double> v)
{
    var s = v.Order().ToList();
    return s[(int)Math.Ceiling(s.Count / 2.0) - 1]; // nearest rank, as in bench/boot
}

/// <summary>Write-only sink that counts bytes and notes when the first and last ones arrived.</summary>
internal sealed class CountingStream : Stream
{
    public Stopwatch Clock { get; set; } = Stopwatch.StartNew();

    public long Count { get; private set; }

    public long Writes { get; private set; }

    public double FirstMs { get; private set; }

    public double LastMs { get; private set; }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => Count;

    public override long Position { get => Count; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length == 0)
        {
            return;
        }

        var now = Clock.Elapsed.TotalMilliseconds;
        if (Count == 0)
        {
            FirstMs = now;
        }

        Count += buffer.Length;
        Writes++;
        LastMs = now;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
