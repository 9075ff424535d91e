using System.IO.Pipelines;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// Both ends of one running <c>matchlock rpc</c> server, however it runs (a child process or an
/// in-memory server). <see cref="RpcConnection"/> speaks the protocol over it and owns it.
/// </summary>
internal interface IRpcChannel : IAsyncDisposable
{
    /// <summary>What the server writes: responses and notifications, one JSON object per line.</summary>
    PipeReader Output { get; }

    /// <summary>What the server reads: requests, one per line.</summary>
    Stream Input { get; }

    /// <summary>Completes (never faults) once the server has ended.</summary>
    Task Exited { get; }

    /// <summary>What the server said about itself (a child's last stderr lines), for error messages; may be empty.</summary>
    string Diagnostics { get; }

    /// <summary>Ends the server's input: it then stops as <c>close</c> would.</summary>
    ValueTask CloseInputAsync();

    /// <summary>Ends the server now, without waiting for it to shut down cleanly.</summary>
    ValueTask KillAsync();
}
