using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

public sealed partial class Sandbox
{
    /// <summary>
    /// Runs <paramref name="command"/> (through <c>/bin/sh -c</c>) to its end and returns all its
    /// output. A non-zero exit is a result, not an exception. Cancelling cancels the command in
    /// the guest (SIGTERM, then SIGKILL after 5 s).
    /// </summary>
    /// <exception cref="MatchlockExecException">The command could not be run.</exception>
    /// <exception cref="MatchlockSandboxException">The sandbox is gone.</exception>
    public async Task<ExecResult> ExecAsync(string command, ExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var result = await _rpc.CallAsync("exec", w => Wire.WriteExec(w, command, options), cancellationToken);
        var status = Wire.Status(result, "exec");
        return new ExecResult(status.ExitCode, Wire.Base64(result, "exec", "stdout"), Wire.Base64(result, "exec", "stderr"), status.Duration);
    }

    /// <summary>
    /// Runs <paramref name="command"/> and yields its output as it comes: <see cref="ExecOutputKind.Stdout"/>
    /// and <see cref="ExecOutputKind.Stderr"/> chunks, then one <see cref="ExecOutputKind.Exit"/> item.
    /// Stopping the enumeration early (or cancelling) cancels the command.
    /// </summary>
    public async IAsyncEnumerable<ExecOutput> ExecStreamAsync(string command, ExecOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var output = Channel.CreateUnbounded<ExecOutput>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var call = await _rpc.StartAsync("exec_stream", w => Wire.WriteExec(w, command, options), (method, p) => Route(output.Writer, method, p), cancellationToken);
        _ = call.Result.ContinueWith(
            done =>
            {
                if (done.IsCompletedSuccessfully)
                {
                    output.Writer.TryWrite(new ExecOutput { Kind = ExecOutputKind.Exit, Status = Wire.Status(done.Result, "exec_stream") });
                    output.Writer.TryComplete();
                }
                else
                {
                    output.Writer.TryComplete(done.Exception?.InnerException ?? new OperationCanceledException());
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        var finished = false;
        try
        {
            await foreach (var item in output.Reader.ReadAllAsync(cancellationToken))
            {
                finished = item.Kind == ExecOutputKind.Exit;
                yield return item;
            }
        }
        finally
        {
            if (!finished)
            {
                await _rpc.CancelAsync(call); // abandoned or cancelled: stop it in the guest
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="command"/>, copying its stdout and stderr into the given streams as
    /// they come (null discards), and returns how it ended.
    /// </summary>
    public async Task<ExecStatus> ExecStreamAsync(string command, Stream? stdout, Stream? stderr, ExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        await foreach (var item in ExecStreamAsync(command, options, cancellationToken))
        {
            var target = item.Kind switch
            {
                ExecOutputKind.Stdout => stdout,
                ExecOutputKind.Stderr => stderr,
                _ => null,
            };
            if (item.Kind == ExecOutputKind.Exit)
            {
                return item.Status!;
            }

            if (target is not null)
            {
                await target.WriteAsync(item.Data, cancellationToken);
                await target.FlushAsync(cancellationToken);
            }
        }

        throw new MatchlockRpcException(MatchlockRpcException.InternalError, "exec_stream ended without an exit status");
    }

    /// <summary>
    /// Starts <paramref name="command"/> with pipes for stdin, stdout and stderr and returns once
    /// it is ready for input. <paramref name="cancellationToken"/> cancels the command for as long
    /// as it runs.
    /// </summary>
    public async Task<ExecPipe> ExecPipeAsync(string command, ExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var exec = await InteractiveExec.StartAsync(_rpc, "exec_pipe", w => Wire.WriteExec(w, command, options), cancellationToken);
        return new ExecPipe(exec);
    }

    /// <summary>
    /// Starts <paramref name="command"/> on a pseudo-terminal of <paramref name="rows"/> ×
    /// <paramref name="cols"/> and returns once it is ready for input.
    /// <paramref name="cancellationToken"/> cancels the command for as long as it runs.
    /// </summary>
    public async Task<ExecTty> ExecTtyAsync(string command, int rows = 24, int cols = 80, ExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        var exec = await InteractiveExec.StartAsync(
            _rpc,
            "exec_tty",
            w =>
            {
                Wire.WriteExec(w, command, options);
                w.WriteNumber("rows", rows);
                w.WriteNumber("cols", cols);
            },
            cancellationToken);
        return new ExecTty(exec);
    }

    private static void Route(ChannelWriter<ExecOutput> output, string method, JsonElement parameters)
    {
        var kind = method switch
        {
            "exec_stream.stdout" => ExecOutputKind.Stdout,
            "exec_stream.stderr" => ExecOutputKind.Stderr,
            _ => (ExecOutputKind?)null,
        };
        if (kind is { } k && parameters.TryGetProperty("data", out var data) && data.TryGetBytesFromBase64(out var bytes))
        {
            output.TryWrite(new ExecOutput { Kind = k, Data = bytes });
        }
    }
}
