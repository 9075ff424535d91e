using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Network.Proxy;

/// <summary>An endpoint that stands for an already-listening socket handed to the proxy.</summary>
internal sealed class GivenSocketEndPoint(Socket socket, int index) : EndPoint
{
    public Socket Socket { get; } = socket;

    public override string ToString() => $"listener#{index} ({Socket.LocalEndPoint})";
}

/// <summary>
/// A Kestrel transport over sockets we are given rather than ones Kestrel binds: the listening
/// sockets live in the sandbox's network namespace, created there by the netns plumbing.
/// Accepted sockets are wrapped by Kestrel's own public <see cref="SocketConnectionContextFactory"/>,
/// so everything after accept is the stock socket transport. Each connection gets a
/// <see cref="ProxyConnectionFeature"/> with its original destination, looked up at accept time
/// (SO_ORIGINAL_DST is only meaningful on the accepted socket).
/// </summary>
internal sealed class GivenSocketListenerFactory(Func<Socket, IPEndPoint?> originalDestination, ILoggerFactory loggerFactory)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is GivenSocketEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not GivenSocketEndPoint given)
        {
            throw new NotSupportedException($"{endpoint} is not a socket given to the egress proxy");
        }

        var factory = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions(), loggerFactory.CreateLogger("Matchlock.Network.Proxy.Transport"));
        return ValueTask.FromResult<IConnectionListener>(new GivenSocketListener(given, factory, originalDestination));
    }
}

internal sealed class GivenSocketListener(GivenSocketEndPoint endpoint, SocketConnectionContextFactory factory, Func<Socket, IPEndPoint?> originalDestination)
    : IConnectionListener
{
    private readonly CancellationTokenSource _stop = new();

    public EndPoint EndPoint => endpoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await endpoint.Socket.AcceptAsync(linked.Token);
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset or SocketError.TooManyOpenSockets)
            {
                // The peer gave up before we accepted, or we are out of descriptors: not fatal for the listener.
                if (e.SocketErrorCode == SocketError.TooManyOpenSockets)
                {
                    await Task.Delay(50, linked.Token).ConfigureAwait(false);
                }

                continue;
            }

            IPEndPoint? destination;
            try
            {
                destination = originalDestination(accepted);
            }
            catch (Exception e) when (e is SocketException or InvalidOperationException or IOException)
            {
                destination = null;
            }

            if (destination is null)
            {
                // Without the original destination there is nothing we could check the connection against.
                accepted.Dispose();
                continue;
            }

            accepted.NoDelay = true;
            var connection = factory.Create(accepted);
            connection.Features.Set(new ProxyConnectionFeature(destination));
            return connection;
        }
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default) => await _stop.CancelAsync();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        endpoint.Socket.Dispose();
        factory.Dispose();
        _stop.Dispose();
    }
}
