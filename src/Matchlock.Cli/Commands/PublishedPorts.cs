using System.Net;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>run -p</c>: the host listeners are bound before the VM boots, as <c>docker run -p</c> does,
/// so a port that is taken fails the run at once and no VM is started for nothing. Connections
/// that arrive while the guest still boots wait for it.
/// </summary>
internal sealed class PublishedPorts : IAsyncDisposable
{
    private readonly TaskCompletionSource<Sandbox> _sandbox = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PortForwarder _forwarder;
    private int _disposed;

    private PublishedPorts(IReadOnlyList<PortMapping> mappings, IReadOnlyList<IPAddress>? addresses)
    {
        _forwarder = PortForwarder.Start(mappings, addresses, ConnectAsync, Sandbox.DescribePortFailure, CliErrors.Warn);
    }

    /// <summary>Null when nothing is published.</summary>
    /// <exception cref="PortForwardException">A port is taken or not allowed.</exception>
    public static PublishedPorts? Bind(IReadOnlyList<PortMapping> mappings, IReadOnlyList<IPAddress>? addresses) =>
        mappings.Count == 0 ? null : new PublishedPorts(mappings, addresses);

    public IReadOnlyList<PortBinding> Bindings => _forwarder.Bindings;

    /// <summary>The guest is up: waiting and future connections go to it. Says where it listens on <paramref name="report"/> (<see cref="ForwardingLine"/>).</summary>
    public void Attach(Sandbox sandbox, TextWriter report)
    {
        _sandbox.TrySetResult(sandbox);
        foreach (var binding in Bindings)
        {
            report.WriteLine(ForwardingLine(binding));
        }

        report.Flush();
    }

    /// <summary>
    /// The original's line for one listener, <c>Forwarding 127.0.0.1:L -> sandbox:R</c> (docs/COMPATIBILITY.md
    /// "CLI"), which <c>run -p</c> and <c>port-forward</c> print on stderr (stdout stays the command's).
    /// An IPv6 address is bracketed (ours: the original prints it bare).
    /// </summary>
    public static string ForwardingLine(PortBinding binding) => $"Forwarding {binding.Endpoint} -> sandbox:{binding.RemotePort}";

    private async Task<Protocol.MuxStream> ConnectAsync(int port, CancellationToken cancellationToken)
    {
        var sandbox = await _sandbox.Task.WaitAsync(cancellationToken);
        return await sandbox.ConnectPortAsync(port, cancellationToken);
    }

    /// <summary>Stops listening and resets open connections; safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _sandbox.TrySetCanceled();
            await _forwarder.DisposeAsync();
        }
    }
}
