using System.Collections.Concurrent;
using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol.Messages;

namespace Matchlock.Rpc.Methods;

/// <summary>
/// <c>exec</c> (buffered), <c>exec_stream</c> (output as notifications), <c>exec_pipe</c> and
/// <c>exec_tty</c> (stdin from the client after <c>*.ready</c>), all driving the sandbox's
/// <see cref="IExecSession"/>. Cancelling one (<c>cancel</c>, or the server stopping) sends the
/// command's process group SIGTERM, then SIGKILL after the grace, and answers -32003 once it ended.
/// </summary>
internal sealed class ExecMethods(RpcWriter output)
{
    /// <summary>Grace between SIGTERM and SIGKILL for a cancelled command (contract: 5 s).</summary>
    public static readonly TimeSpan CancelGrace = TimeSpan.FromSeconds(5);

    private const int Chunk = 64 * 1024;

    private readonly ConcurrentDictionary<string, ExecInput> _inputs = new(StringComparer.Ordinal);

    public async Task<Action<Utf8JsonWriter>> ExecAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var spec = Spec(call, tty: false);
        await using var session = await sandbox.StartExecAsync(spec, call.Cancelled);
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var copies = Task.WhenAll(session.Stdout.CopyToAsync(stdout, CancellationToken.None), session.Stderr.CopyToAsync(stderr, CancellationToken.None));
        var result = await WaitAsync(session, call);
        await copies;
        var (outBytes, errBytes) = (stdout.ToArray(), stderr.ToArray());
        return w =>
        {
            w.WriteNumber("exit_code", result.ExitCode);
            w.WriteBase64String("stdout", outBytes);
            w.WriteBase64String("stderr", errBytes);
            w.WriteNumber("duration_ms", (long)result.Duration.TotalMilliseconds);
        };
    }

    public async Task<Action<Utf8JsonWriter>> StreamAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var spec = Spec(call, tty: false);
        await using var session = await sandbox.StartExecAsync(spec, call.Cancelled);
        var copies = Task.WhenAll(
            RelayAsync(session.Stdout, "exec_stream.stdout", call),
            RelayAsync(session.Stderr, "exec_stream.stderr", call));
        var result = await WaitAsync(session, call);
        await copies; // every output notification goes out before the result
        return Status(result);
    }

    public async Task<Action<Utf8JsonWriter>> PipeAsync(IRpcSandbox sandbox, RpcCall call, bool tty)
    {
        var prefix = tty ? "exec_tty" : "exec_pipe";
        if (call.Key is not { } key)
        {
            throw RpcException.InvalidParams($"{call.Method} needs a request id: its stdin and ready notification name it");
        }

        var spec = Spec(call, tty) with { Stdin = true };
        await using var session = await sandbox.StartExecAsync(spec, call.Cancelled);
        var input = new ExecInput(session);
        _inputs[key] = input;
        try
        {
            var pump = input.PumpAsync();
            await output.NotifyAsync(prefix + ".ready", w =>
            {
                w.WritePropertyName("id");
                call.NotificationId.WriteTo(w);
            });
            var copies = tty
                ? RelayAsync(session.Stdout, "exec_tty.stdout", call)
                : Task.WhenAll(RelayAsync(session.Stdout, "exec_pipe.stdout", call), RelayAsync(session.Stderr, "exec_pipe.stderr", call));
            var result = await WaitAsync(session, call);
            await copies;
            input.Complete();
            await pump;
            return Status(result);
        }
        finally
        {
            _inputs.TryRemove(key, out _);
            input.Complete();
        }
    }

    /// <summary>
    /// <c>*.stdin</c>, <c>*.stdin_eof</c> and <c>exec_tty.resize</c>, on the reading loop in arrival
    /// order. Never answered; input for an exec that is not running (ended, unknown) is dropped.
    /// </summary>
    public void Input(string method, RpcParams parameters)
    {
        try
        {
            var key = parameters.Integer("id").ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!_inputs.TryGetValue(key, out var input))
            {
                return;
            }

            switch (method)
            {
                case "exec_pipe.stdin" or "exec_tty.stdin":
                    input.Write(parameters.Base64("data"));
                    break;
                case "exec_pipe.stdin_eof" or "exec_tty.stdin_eof":
                    input.Complete();
                    break;
                case "exec_tty.resize":
                    var rows = parameters.OptionalInt32("rows", 1, ushort.MaxValue) ?? TerminalDefaults.Rows;
                    var cols = parameters.OptionalInt32("cols", 1, ushort.MaxValue) ?? TerminalDefaults.Cols;
                    _ = input.Session.ResizeAsync(rows, cols, CancellationToken.None).AsTask();
                    break;
            }
        }
        catch (RpcException)
        {
            // Malformed input for a method nobody answers: there is no one to tell.
        }
    }

    private static ExecSpec Spec(RpcCall call, bool tty)
    {
        var p = call.Params;
        var env = p.OptionalStringMap("env")?.Select(kv => $"{kv.Key}={kv.Value}").ToList() ?? [];
        return new ExecSpec
        {
            Argv = p.Command("command"),
            Env = env,
            WorkingDir = p.OptionalString("working_dir") is { Length: > 0 } dir ? dir : null,
            User = p.OptionalString("user") is { Length: > 0 } user ? user : null,
            Tty = tty,
            Rows = tty ? p.OptionalInt32("rows", 1, ushort.MaxValue) ?? TerminalDefaults.Rows : TerminalDefaults.Rows,
            Cols = tty ? p.OptionalInt32("cols", 1, ushort.MaxValue) ?? TerminalDefaults.Cols : TerminalDefaults.Cols,
            KillGrace = CancelGrace,
        };
    }

    /// <summary>Waits for the command; a cancelled call stops it (SIGTERM, SIGKILL after the grace) and throws once it ended.</summary>
    private static async Task<ExecResult> WaitAsync(IExecSession session, RpcCall call)
    {
        ExecResult result;
        using (call.Cancelled.Register(() => _ = session.CancelAsync(CancelGrace, CancellationToken.None).AsTask()))
        {
            result = await session.WaitAsync(CancellationToken.None);
        }

        call.Cancelled.ThrowIfCancellationRequested();
        return result;
    }

    private async Task RelayAsync(Stream from, string method, RpcCall call)
    {
        var buffer = new byte[Chunk];
        int n;
        while ((n = await from.ReadAsync(buffer, CancellationToken.None)) > 0)
        {
            await output.DataAsync(method, call.NotificationId, buffer.AsMemory(0, n));
        }
    }

    private static Action<Utf8JsonWriter> Status(ExecResult result) => w =>
    {
        w.WriteNumber("exit_code", result.ExitCode);
        w.WriteNumber("duration_ms", (long)result.Duration.TotalMilliseconds);
    };

    /// <summary>A running exec's stdin: what the client sends is queued in order and pumped to the command.</summary>
    private sealed class ExecInput(IExecSession session)
    {
        // Unbounded on our side: the reading loop must never wait on one command's input.
        private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        private readonly Lock _gate = new(); // PipeWriter is not thread-safe: the reading loop writes, the exec's end completes
        private bool _completed;

        public IExecSession Session => session;

        public Task PumpAsync() => Task.Run(async () =>
        {
            try
            {
                await session.PumpStdinAsync(_pipe.Reader.AsStream(), CancellationToken.None);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or Protocol.MuxStreamResetException or Protocol.MuxConnectionClosedException)
            {
                // The command ended before its input did.
            }
        });

        public void Write(byte[] data)
        {
            lock (_gate)
            {
                if (!_completed && data.Length > 0)
                {
                    _pipe.Writer.Write(data);
                    _ = _pipe.Writer.FlushAsync().AsTask(); // completes at once: no pause threshold
                }
            }
        }

        public void Complete()
        {
            lock (_gate)
            {
                if (!_completed)
                {
                    _completed = true;
                    _pipe.Writer.Complete();
                }
            }
        }
    }
}
