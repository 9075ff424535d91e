using Matchlock.Core.Events;
using System.Net;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol.Messages;

namespace Matchlock.Rpc;

/// <summary>
/// What the rpc methods need of the one sandbox an rpc process holds. <see cref="OwnedSandbox"/>
/// is the real one (a <see cref="Sandbox"/> this process owns, with its control socket); tests
/// give the server a fake to check the protocol without a VM.
/// </summary>
internal interface IRpcSandbox : IAsyncDisposable
{
    string Id { get; }

    /// <summary>Completes when the sandbox stops by itself or by <c>matchlock kill</c>; its result says why.</summary>
    Task<string> Stopped { get; }

    /// <summary>The command over the sandbox's defaults (image config, <c>create</c>'s env).</summary>
    Task<IExecSession> StartExecAsync(ExecSpec spec, CancellationToken cancellationToken);

    Task WriteFileAsync(string path, Stream content, int mode, CancellationToken cancellationToken);

    Task ReadFileAsync(string path, Stream destination, CancellationToken cancellationToken);

    Task<IReadOnlyList<FileEntry>> ListFilesAsync(string path, CancellationToken cancellationToken);

    /// <summary>Adds (or removes) allow-list patterns; returns the list after the change.</summary>
    /// <exception cref="RpcException">The sandbox has no network.</exception>
    IReadOnlyList<string> ChangeAllowList(IReadOnlyList<string> hosts, bool add);

    /// <summary>The sandbox's network events; null without a network.</summary>
    SandboxEventLog? Events { get; }

    /// <summary>Starts forwarding host ports to guest ports.</summary>
    PortForwarder ForwardPorts(IReadOnlyList<PortMapping> mappings, IReadOnlyList<IPAddress>? addresses);

    /// <summary>The file the sandbox's log (the launched entrypoint's output) goes to.</summary>
    string LogPath { get; }

    /// <summary>Stops the guest (its processes get <paramref name="grace"/>) and releases everything; the sandbox stays listed as stopped until <c>matchlock rm</c>.</summary>
    Task CloseAsync(TimeSpan grace);
}

/// <summary>Makes the sandbox of a <c>create</c> request.</summary>
internal interface IRpcSandboxFactory
{
    /// <exception cref="RpcException">Bad config (-32602) or a start that failed (-32000).</exception>
    Task<IRpcSandbox> CreateAsync(RpcParams config, CancellationToken cancellationToken);
}
