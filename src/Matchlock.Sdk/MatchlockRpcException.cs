namespace Matchlock.Sdk;

/// <summary>
/// A request to <c>matchlock rpc</c> failed. <see cref="Code"/> is the JSON-RPC error code the
/// server answered with (contract/rpc.json "errors"); the derived types say what the caller can
/// still do. A cancelled request (-32003) surfaces as <see cref="OperationCanceledException"/> instead.
/// </summary>
public class MatchlockRpcException : Exception
{
    /// <summary>Parse error: the server could not read a line (-32700).</summary>
    public const int ParseError = -32700;

    /// <summary>The request is not a valid JSON-RPC request (-32600).</summary>
    public const int InvalidRequest = -32600;

    /// <summary>The server does not know the method (-32601).</summary>
    public const int MethodNotFound = -32601;

    /// <summary>The params are missing a field or carry a wrong value (-32602).</summary>
    public const int InvalidParams = -32602;

    /// <summary>The server failed in a way it did not expect (-32603).</summary>
    public const int InternalError = -32603;

    /// <summary>The sandbox could not start, has stopped, or the rpc process is gone (-32000).</summary>
    public const int VmFailed = -32000;

    /// <summary>A command could not be run (-32001).</summary>
    public const int ExecFailed = -32001;

    /// <summary>A file operation failed (-32002).</summary>
    public const int FileFailed = -32002;

    /// <summary>The request was cancelled (-32003).</summary>
    public const int Cancelled = -32003;

    /// <summary>Creates the exception for an error answer.</summary>
    public MatchlockRpcException(int code, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>The JSON-RPC error code.</summary>
    public int Code { get; }

    /// <summary>
    /// The exception for an error answer: the type that matches <paramref name="code"/>, or
    /// <see cref="OperationCanceledException"/> for -32003.
    /// </summary>
    internal static Exception FromError(int code, string message) => code switch
    {
        VmFailed => new MatchlockSandboxException(message),
        ExecFailed => new MatchlockExecException(message),
        FileFailed => new MatchlockFileException(message),
        InvalidParams or InvalidRequest or MethodNotFound => new MatchlockInvalidRequestException(code, message),
        Cancelled => new OperationCanceledException(message),
        _ => new MatchlockRpcException(code, message),
    };
}

/// <summary>
/// The sandbox could not be created, has stopped, or the <c>matchlock rpc</c> process that held it
/// is gone (-32000). The <see cref="Sandbox"/> is no longer usable: dispose it and launch another.
/// </summary>
public sealed class MatchlockSandboxException : MatchlockRpcException
{
    /// <summary>Creates the exception.</summary>
    public MatchlockSandboxException(string message, Exception? innerException = null)
        : base(VmFailed, message, innerException)
    {
    }
}

/// <summary>A command could not be started or run (-32001). The sandbox is still usable.</summary>
public sealed class MatchlockExecException : MatchlockRpcException
{
    /// <summary>Creates the exception.</summary>
    public MatchlockExecException(string message)
        : base(ExecFailed, message)
    {
    }
}

/// <summary>
/// A file could not be written, read or listed (-32002), or an SDK action hook refused the call
/// (<see cref="MatchlockVfsHookBlockedException"/>). The sandbox is still usable.
/// </summary>
public class MatchlockFileException : MatchlockRpcException
{
    /// <summary>Creates the exception.</summary>
    public MatchlockFileException(string message)
        : base(FileFailed, message)
    {
    }
}

/// <summary>
/// The server refused the request as malformed (-32602, -32600, -32601): fix the arguments (the
/// message names the field). The sandbox is still usable.
/// </summary>
public sealed class MatchlockInvalidRequestException : MatchlockRpcException
{
    /// <summary>Creates the exception.</summary>
    public MatchlockInvalidRequestException(int code, string message)
        : base(code, message)
    {
    }
}
