using System.Text.Json;
using Matchlock.Core;
using Matchlock.Rpc.Methods;

namespace Matchlock.Rpc;

/// <summary>
/// The one sandbox of an rpc process and the method families that use it. Before <c>create</c>
/// and after the sandbox stopped, every method but <c>create</c> and <c>close</c> fails with
/// -32000 saying so.
/// </summary>
internal sealed class RpcSession(RpcWriter output)
{
    /// <summary>Methods handled concurrently (create, close, cancel and the stdin methods are the server's own).</summary>
    public static readonly IReadOnlySet<string> Methods = new HashSet<string>(StringComparer.Ordinal)
    {
        "exec", "exec_stream", "exec_pipe", "exec_tty",
        "write_file", "read_file", "list_files",
        "allow_list_add", "allow_list_delete",
        "port_forward", "log", "log_stream",
    };

    private readonly Lock _gate = new(); // guards _sandbox and _closed
    private IRpcSandbox? _sandbox;
    private bool _closed;
    private IDisposable? _events;

    public ExecMethods Exec { get; } = new(output);

    public PortMethods Ports { get; } = new();

    public async Task<Action<Utf8JsonWriter>> CreateAsync(IRpcSandboxFactory factory, RpcCall call)
    {
        lock (_gate)
        {
            if (_sandbox is not null)
            {
                throw new RpcException(RpcErrorCodes.VmFailed, $"this rpc process already holds sandbox {_sandbox.Id}; one rpc process holds one sandbox (start another `matchlock rpc` for a second)");
            }

            if (_closed)
            {
                throw new RpcException(RpcErrorCodes.VmFailed, "the server is closing");
            }
        }

        var sandbox = await factory.CreateAsync(call.Params, call.Cancelled);
        lock (_gate)
        {
            _sandbox = sandbox;
        }

        if (sandbox.Events is { } events)
        {
            _events = EventMethods.Forward(events, output);
        }

        return w => w.WriteString("id", sandbox.Id);
    }

    public Task<Action<Utf8JsonWriter>> HandleAsync(RpcCall call)
    {
        var sandbox = Current();
        return call.Method switch
        {
            "exec" => Exec.ExecAsync(sandbox, call),
            "exec_stream" => Exec.StreamAsync(sandbox, call),
            "exec_pipe" => Exec.PipeAsync(sandbox, call, tty: false),
            "exec_tty" => Exec.PipeAsync(sandbox, call, tty: true),
            "write_file" => FileMethods.WriteAsync(sandbox, call),
            "read_file" => FileMethods.ReadAsync(sandbox, call),
            "list_files" => FileMethods.ListAsync(sandbox, call),
            "allow_list_add" => Task.FromResult(NetworkMethods.ChangeAllowList(sandbox, call, add: true)),
            "allow_list_delete" => Task.FromResult(NetworkMethods.ChangeAllowList(sandbox, call, add: false)),
            "port_forward" => Ports.ForwardAsync(sandbox, call),
            "log" => LogMethods.ReadAsync(sandbox, call),
            "log_stream" => LogMethods.StreamAsync(sandbox, call, output),
            _ => throw new RpcException(RpcErrorCodes.MethodNotFound, $"Method not found: {call.Method}"),
        };
    }

    /// <summary>Stops forwarding, then stops and releases the sandbox (it stays listed until <c>matchlock rm</c>).</summary>
    public async Task CloseAsync(TimeSpan timeout)
    {
        IRpcSandbox? sandbox;
        lock (_gate)
        {
            _closed = true;
            sandbox = _sandbox;
        }

        _events?.Dispose();
        await Ports.DisposeAsync();
        if (sandbox is not null)
        {
            await sandbox.CloseAsync(timeout);
            await sandbox.DisposeAsync();
        }
    }

    /// <summary>The error a failed request answers with: its kind decides the code (contract/rpc.json "errors").</summary>
    public static RpcException Translate(Exception ex, RpcCall call) => ex switch
    {
        RpcException rpc => rpc,
        OperationCanceledException when call.Cancelled.IsCancellationRequested =>
            new RpcException(RpcErrorCodes.Cancelled, $"{call.Method} was cancelled"),
        MatchlockException { Kind: MatchlockErrorKind.InvalidInput } => RpcException.InvalidParams(ex.Message),
        MatchlockException { Kind: MatchlockErrorKind.StartFailed or MatchlockErrorKind.SandboxGone } => new RpcException(RpcErrorCodes.VmFailed, ex.Message, ex),
        MatchlockException => new RpcException(FailureCode(call.Method), ex.Message, ex),
        ArgumentException or FormatException => RpcException.InvalidParams(ex.Message),
        IOException => new RpcException(FailureCode(call.Method), ex.Message, ex),
        _ => new RpcException(RpcErrorCodes.InternalError, $"{call.Method} failed: {ex.GetType().Name}: {ex.Message}", ex),
    };

    private static int FailureCode(string method) => method switch
    {
        "exec" or "exec_stream" or "exec_pipe" or "exec_tty" => RpcErrorCodes.ExecFailed,
        "write_file" or "read_file" or "list_files" => RpcErrorCodes.FileFailed,
        _ => RpcErrorCodes.VmFailed,
    };

    private IRpcSandbox Current()
    {
        lock (_gate)
        {
            if (_closed)
            {
                throw new RpcException(RpcErrorCodes.VmFailed, "the sandbox is closed");
            }

            var sandbox = _sandbox ?? throw new RpcException(RpcErrorCodes.VmFailed, "VM not created: call create first");
            return sandbox.Stopped.IsCompleted
                ? throw new RpcException(RpcErrorCodes.VmFailed, $"sandbox {sandbox.Id} has stopped ({sandbox.Stopped.Result}); close this rpc and create a new one")
                : sandbox;
        }
    }
}
