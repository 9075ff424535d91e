using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

/// <summary>
/// Where a sandbox's <c>matchlock rpc</c> server runs. The protocol and every method above it are
/// the same for all transports; only how the server is started differs.
/// </summary>
public abstract partial class MatchlockTransport
{
    private protected MatchlockTransport()
    {
    }

    /// <summary>
    /// A server that runs in this process and speaks the protocol over the two streams it is
    /// given: it reads requests from the first, writes answers to the second, and stops when the
    /// token fires or the first ends. For hosts with their own server, and for tests.
    /// </summary>
    public static MatchlockTransport InMemory(Func<Stream, Stream, CancellationToken, Task> serve)
    {
        ArgumentNullException.ThrowIfNull(serve);
        return new InMemoryTransport(serve);
    }

    /// <summary>Starts one server for one sandbox.</summary>
    internal abstract IRpcChannel Open(MatchlockClientOptions options);

    private sealed class InMemoryTransport(Func<Stream, Stream, CancellationToken, Task> serve) : MatchlockTransport
    {
        internal override IRpcChannel Open(MatchlockClientOptions options) => new PipeChannel(serve);
    }

    /// <summary>The default: <c>matchlock rpc</c> as a child process.</summary>
    internal sealed class ChildProcess : MatchlockTransport
    {
        public static readonly ChildProcess Instance = new();

        internal override IRpcChannel Open(MatchlockClientOptions options) =>
            ProcessChannel.Start(options.ResolvedBinary, options.UseSudo);
    }
}
