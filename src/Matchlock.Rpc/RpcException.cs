namespace Matchlock.Rpc;

/// <summary>The JSON-RPC error codes (contract/rpc.json "errors").</summary>
public static class RpcErrorCodes
{
    public const int ParseError = -32700;
    public const int InvalidRequest = -32600;
    public const int MethodNotFound = -32601;
    public const int InvalidParams = -32602;
    public const int InternalError = -32603;

    /// <summary>The sandbox could not start, is gone, or there is none yet.</summary>
    public const int VmFailed = -32000;

    /// <summary>A command could not run (the sandbox goes on).</summary>
    public const int ExecFailed = -32001;

    /// <summary>A file operation failed (the sandbox goes on).</summary>
    public const int FileFailed = -32002;

    /// <summary>The request was cancelled by <c>cancel</c> or by the server stopping.</summary>
    public const int Cancelled = -32003;
}

/// <summary>A request that ends with a JSON-RPC error: its code and a message that says what was wrong and what to do.</summary>
public sealed class RpcException(int code, string message, Exception? inner = null) : Exception(message, inner)
{
    public int Code { get; } = code;

    public static RpcException InvalidParams(string message) => new(RpcErrorCodes.InvalidParams, message);
}
