using Matchlock.Core.Events;
using System.IO.Pipelines;
using System.Net;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol.Messages;

namespace Matchlock.Rpc.Tests;

/// <summary>Makes <see cref="FakeSandbox"/>es after reading the config as the real factory does (so bad configs fail the same way).</summary>
internal sealed class FakeFactory : IRpcSandboxFactory
{
    public List<FakeSandbox> Created { get; } = [];

    public CreateConfig? LastConfig { get; private set; }

    public Task<IRpcSandbox> CreateAsync(RpcParams config, CancellationToken cancellationToken)
    {
        LastConfig = CreateConfig.Read(config);
        var sandbox = new FakeSandbox();
        Created.Add(sandbox);
        return Task.FromResult<IRpcSandbox>(sandbox);
    }
}

/// <summary>
/// A sandbox whose "commands" are scripted by argv[0] (after <c>/bin/sh -c</c> for string commands):
/// <c>echo TEXT</c>, <c>fail N</c> (stderr + status N), <c>bytes</c> (0..255 on stdout), <c>cat</c>
/// (stdin to stdout), <c>sleep</c> (until cancelled: status 143, signal 15), <c>tty</c> (reports resizes).
/// </summary>
internal sealed class FakeSandbox : IRpcSandbox
{
    private readonly Dictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource<string> _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Id => "vm-0123abcd";

    public Task<string> Stopped => _stopped.Task;

    public SandboxEventLog? Events { get; } = new();

    public string LogPath { get; } = Path.Combine(Path.GetTempPath(), $"matchlock-rpc-test-{Guid.NewGuid():N}.log");

    public List<ExecSpec> Execs { get; } = [];

    public List<string> AllowList { get; } = [];

    public bool Closed { get; private set; }

    public TimeSpan? ClosedWith { get; private set; }

    public void StopByItself(string why) => _stopped.TrySetResult(why);

    public Task<IExecSession> StartExecAsync(ExecSpec spec, CancellationToken cancellationToken)
    {
        lock (Execs)
        {
            Execs.Add(spec);
        }

        var argv = spec.Argv is ["/bin/sh", "-c", var script] ? script.Split(' ', 2) : [.. spec.Argv];
        return Task.FromResult<IExecSession>(new FakeExec(argv, spec));
    }

    public Task WriteFileAsync(string path, Stream content, int mode, CancellationToken cancellationToken)
    {
        using var copy = new MemoryStream();
        content.CopyTo(copy);
        lock (_files)
        {
            _files[path] = copy.ToArray();
        }

        return Task.CompletedTask;
    }

    public Task ReadFileAsync(string path, Stream destination, CancellationToken cancellationToken)
    {
        byte[]? data;
        lock (_files)
        {
            _files.TryGetValue(path, out data);
        }

        if (data is null)
        {
            throw new GuestOperationException($"read_file: {path}: no such file or directory", "ENOENT");
        }

        destination.Write(data);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<FileEntry>> ListFilesAsync(string path, CancellationToken cancellationToken)
    {
        lock (_files)
        {
            IReadOnlyList<FileEntry> entries = [.. _files.Where(f => Path.GetDirectoryName(f.Key) == path)
                .Select(f => new FileEntry(Path.GetFileName(f.Key), f.Value.Length, 0x1A4, 1_700_000_000, false))];
            return Task.FromResult(entries);
        }
    }

    public IReadOnlyList<string> ChangeAllowList(IReadOnlyList<string> hosts, bool add)
    {
        lock (AllowList)
        {
            if (add)
            {
                AllowList.AddRange(hosts.Except(AllowList));
            }
            else
            {
                AllowList.RemoveAll(hosts.Contains);
            }

            return [.. AllowList];
        }
    }

    public PortForwarder ForwardPorts(IReadOnlyList<PortMapping> mappings, IReadOnlyList<IPAddress>? addresses) =>
        PortForwarder.Start(mappings, addresses ?? [IPAddress.Loopback], (_, _) => throw new InvalidOperationException("no guest"), _ => null, _ => { });

    public Task CloseAsync(TimeSpan grace)
    {
        Closed = true;
        ClosedWith = grace;
        _stopped.TrySetResult("closed");
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await (Events?.DisposeAsync() ?? ValueTask.CompletedTask);
        File.Delete(LogPath);
    }

    private sealed class FakeExec : IExecSession
    {
        private readonly Pipe _stdout = new();
        private readonly Pipe _stderr = new();
        private readonly TaskCompletionSource<ExecResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<Stream> _stdin = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly string[] _argv;

        public FakeExec(string[] argv, ExecSpec spec)
        {
            _argv = argv;
            Stdout = _stdout.Reader.AsStream();
            Stderr = _stderr.Reader.AsStream();
            _ = Task.Run(RunAsync);
        }

        public Stream Stdout { get; }

        public Stream Stderr { get; }

        public List<(int Rows, int Cols)> Resizes { get; } = [];

        public async Task PumpStdinAsync(Stream source, CancellationToken cancellationToken)
        {
            _stdin.TrySetResult(source);
            await _done.Task;
        }

        public async ValueTask SignalAsync(int signal, CancellationToken cancellationToken) => await EndAsync(128 + signal, signal);

        public async ValueTask ResizeAsync(int rows, int cols, CancellationToken cancellationToken)
        {
            await _stdout.Writer.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"resize {rows}x{cols}\n"), cancellationToken);
        }

        public async ValueTask CancelAsync(TimeSpan grace, CancellationToken cancellationToken) => await EndAsync(143, 15);

        public Task<ExecResult> WaitAsync(CancellationToken cancellationToken) => _done.Task.WaitAsync(cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private async Task RunAsync()
        {
            switch (_argv[0])
            {
                case "echo":
                    await _stdout.Writer.WriteAsync(System.Text.Encoding.UTF8.GetBytes((_argv.Length > 1 ? _argv[1] : "") + "\n"));
                    await EndAsync(0, null);
                    break;
                case "fail":
                    await _stderr.Writer.WriteAsync("failing\n"u8.ToArray());
                    await EndAsync(int.Parse(_argv[1], System.Globalization.CultureInfo.InvariantCulture), null);
                    break;
                case "bytes":
                    await _stdout.Writer.WriteAsync(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray());
                    await EndAsync(0, null);
                    break;
                case "cat":
                    var input = await _stdin.Task;
                    var buffer = new byte[4096];
                    int n;
                    while ((n = await input.ReadAsync(buffer)) > 0)
                    {
                        await _stdout.Writer.WriteAsync(buffer.AsMemory(0, n));
                    }

                    await EndAsync(0, null);
                    break;
                case "sleep" or "tty":
                    break; // until cancelled
                default:
                    await _stderr.Writer.WriteAsync(System.Text.Encoding.UTF8.GetBytes($"{_argv[0]}: not found\n"));
                    await EndAsync(127, null);
                    break;
            }
        }

        private async Task EndAsync(int status, int? signal)
        {
            if (_done.Task.IsCompleted)
            {
                return;
            }

            await _stdout.Writer.CompleteAsync();
            await _stderr.Writer.CompleteAsync();
            _done.TrySetResult(new ExecResult(status, signal, TimeSpan.FromMilliseconds(7)));
        }
    }
}
