using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// One running <c>exec_pipe</c> or <c>exec_tty</c>: routes its output notifications into pipes
/// the caller reads as streams, holds stdin back until <c>*.ready</c>, and turns the final
/// answer into an <see cref="ExecStatus"/>.
/// </summary>
internal sealed class InteractiveExec : IAsyncDisposable
{
    /// <summary>Stdin goes out in chunks of at most this many bytes (one request line each).</summary>
    public const int StdinChunk = 32 * 1024;

    // No back-pressure: the reading loop must never wait for a slow consumer, or every other
    // request would stall behind it. Output waits here until the caller reads it.
    private static readonly PipeOptions Unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);

    private readonly RpcConnection _rpc;
    private readonly string _method;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Pipe _stdout = new(Unbounded);
    private readonly Pipe _stderr = new(Unbounded);
    private readonly Lock _outputGate = new(); // guards writes to the two pipes and their completion
    private readonly SemaphoreSlim _stdinLock = new(1, 1); // one stdin write at a time keeps chunks in order
    private PendingCall? _call;
    private CancellationTokenRegistration _cancellation;
    private bool _outputDone;
    private int _eofSent;

    private InteractiveExec(RpcConnection rpc, string method)
    {
        _rpc = rpc;
        _method = method;
        StandardInput = new StdinStream(this);
        StandardOutput = _stdout.Reader.AsStream();
        StandardError = _stderr.Reader.AsStream();
    }

    public Stream StandardInput { get; }

    public Stream StandardOutput { get; }

    public Stream StandardError { get; }

    private PendingCall Call => _call ?? throw new InvalidOperationException("not started");

    /// <summary>Starts the command and returns once the server said it is ready for stdin.</summary>
    public static async Task<InteractiveExec> StartAsync(RpcConnection rpc, string method, Action<Utf8JsonWriter> writeParams, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var exec = new InteractiveExec(rpc, method);
        exec._call = await rpc.StartAsync(method, writeParams, exec.OnNotification, cancellationToken);
        _ = exec._call.Result.ContinueWith(_ => exec.CompleteOutput(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        // The caller's token governs the command for its whole life, not only the start.
        exec._cancellation = cancellationToken.Register(() => _ = exec.CancelAsync());
        try
        {
            await Task.WhenAny(exec._ready.Task, exec._call.Result).WaitAsync(cancellationToken);
            if (exec._call.Result.IsFaulted)
            {
                await exec._call.Result; // it failed before it was ready: throw its error
            }
        }
        catch
        {
            await exec.DisposeAsync();
            throw;
        }

        return exec;
    }

    public async Task<ExecStatus> WaitAsync(CancellationToken cancellationToken) =>
        Wire.Status(await _rpc.WaitAsync(Call, cancellationToken), _method);

    public Task SendAsync(string suffix, Action<Utf8JsonWriter> writeParams, CancellationToken cancellationToken) =>
        _rpc.SendAsync(_method + suffix, w =>
        {
            w.WriteNumber("id", Call.Id);
            writeParams(w);
        }, cancellationToken);

    public async Task WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _ready.Task.WaitAsync(cancellationToken); // the server drops stdin that comes before ready
        await _stdinLock.WaitAsync(cancellationToken);
        try
        {
            if (Volatile.Read(ref _eofSent) != 0)
            {
                throw new ObjectDisposedException(nameof(StandardInput), "stdin is already closed");
            }

            for (var offset = 0; offset < data.Length; offset += StdinChunk)
            {
                var chunk = data.Slice(offset, Math.Min(StdinChunk, data.Length - offset));
                await SendAsync(".stdin", w => w.WriteBase64String("data", chunk.Span), cancellationToken);
            }
        }
        finally
        {
            _stdinLock.Release();
        }
    }

    /// <summary>Sends <c>stdin_eof</c> once; nothing when the command already ended.</summary>
    public async Task CloseStdinAsync()
    {
        if (Interlocked.Exchange(ref _eofSent, 1) != 0 || _call is null || _call.Result.IsCompleted)
        {
            return;
        }

        await _ready.Task;
        await _stdinLock.WaitAsync();
        try
        {
            await SendAsync(".stdin_eof", _ => { }, CancellationToken.None);
        }
        catch (MatchlockSandboxException)
        {
            // The server is gone: its end of stdin is closed with it.
        }
        finally
        {
            _stdinLock.Release();
        }
    }

    public Task CancelAsync() => _call is { } call && !call.Result.IsCompleted ? _rpc.CancelAsync(call) : Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await _cancellation.DisposeAsync();
        await CancelAsync();
        CompleteOutput();
        _ready.TrySetResult(); // release writers still waiting for ready
    }

    private void OnNotification(string method, JsonElement parameters)
    {
        if (method.EndsWith(".ready", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
            return;
        }

        var pipe = method.EndsWith(".stdout", StringComparison.Ordinal) ? _stdout
            : method.EndsWith(".stderr", StringComparison.Ordinal) ? _stderr
            : null;
        if (pipe is null || !parameters.TryGetProperty("data", out var data) || !data.TryGetBytesFromBase64(out var bytes))
        {
            return;
        }

        lock (_outputGate)
        {
            if (_outputDone)
            {
                return;
            }

            pipe.Writer.Write(bytes);

            // Never waits: the pipe has no pause threshold. A reader that went away makes the flush report completion.
            _ = pipe.Writer.FlushAsync().AsTask();
        }
    }

    private void CompleteOutput()
    {
        lock (_outputGate)
        {
            if (_outputDone)
            {
                return;
            }

            _outputDone = true;
            _stdout.Writer.Complete();
            _stderr.Writer.Complete();
        }

        _ready.TrySetResult();
    }

    /// <summary>The write-only stdin of the command: writes become <c>*.stdin</c>, disposing sends <c>*.stdin_eof</c>.</summary>
    private sealed class StdinStream(InteractiveExec exec) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            new(exec.WriteStdinAsync(buffer, cancellationToken));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            exec.WriteStdinAsync(buffer.AsMemory(offset, count), cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) =>
            WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override async ValueTask DisposeAsync()
        {
            await exec.CloseStdinAsync();
            await base.DisposeAsync();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                exec.CloseStdinAsync().GetAwaiter().GetResult();
            }

            base.Dispose(disposing);
        }
    }
}
