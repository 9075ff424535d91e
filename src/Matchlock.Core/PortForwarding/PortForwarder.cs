using System.Net;
using System.Net.Sockets;
using Matchlock.Protocol;

namespace Matchlock.Core.PortForwarding;

/// <summary>
/// Host listeners of <c>run -p</c> / <c>port-forward</c>: every accepted TCP connection becomes a
/// stream to the guest port (docs/ARCHITECTURE.md D6: over the sandbox's channel, not its network, so it works
/// with <c>--no-network</c> and opens no path through the sealed netns). Connections run
/// concurrently, each with its own flow control.
/// </summary>
public sealed class PortForwarder : IAsyncDisposable
{
    /// <summary>Where <c>--address</c> defaults to: both loopbacks, so <c>localhost</c> works whichever family a client tries first.</summary>
    public static readonly IReadOnlyList<IPAddress> DefaultAddresses = [IPAddress.Loopback, IPAddress.IPv6Loopback];

    private readonly List<(Socket Listener, PortBinding Binding)> _listeners;
    private readonly Func<int, CancellationToken, Task<MuxStream>> _connect;
    private readonly Func<ReadOnlyMemory<byte>?, string?> _describeFailure;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<Socket> _clients = []; // guarded by itself
    private readonly List<Task> _loops = [];
    private int _handlers;

    private PortForwarder(
        List<(Socket, PortBinding)> listeners,
        Func<int, CancellationToken, Task<MuxStream>> connect,
        Func<ReadOnlyMemory<byte>?, string?> describeFailure,
        Action<string> log)
    {
        _listeners = listeners;
        _connect = connect;
        _describeFailure = describeFailure;
        _log = log;
    }

    /// <summary>What is listening, in the order of the mappings, then the addresses.</summary>
    public IReadOnlyList<PortBinding> Bindings => [.. _listeners.Select(l => l.Binding)];

    /// <summary>Connections being relayed now.</summary>
    public int ActiveConnections => Volatile.Read(ref _handlers);

    /// <summary>
    /// Binds every mapping on every address (all or nothing) and starts accepting.
    /// </summary>
    /// <param name="addresses">null: <see cref="DefaultAddresses"/>, where a host without IPv6 just skips ::1.</param>
    /// <param name="connect">Opens the stream to a guest port.</param>
    /// <param name="describeFailure">The reason in a stream's reply (null reply: it was reset), or null when it ended well.</param>
    /// <param name="log">Per-connection failures (refused in the guest, sandbox gone).</param>
    /// <exception cref="PortForwardException">A port is taken, not allowed, or an address is not this host's.</exception>
    public static PortForwarder Start(
        IReadOnlyList<PortMapping> mappings,
        IReadOnlyList<IPAddress>? addresses,
        Func<int, CancellationToken, Task<MuxStream>> connect,
        Func<ReadOnlyMemory<byte>?, string?> describeFailure,
        Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(mappings);
        CheckDuplicates(mappings);
        var optionalV6 = addresses is null;
        var bound = new List<(Socket, PortBinding)>();
        try
        {
            foreach (var mapping in mappings)
            {
                bound.AddRange(BindMapping(mapping, addresses ?? DefaultAddresses, optionalV6));
            }
        }
        catch
        {
            DisposeAll(bound);
            throw;
        }

        var forwarder = new PortForwarder(bound, connect, describeFailure, log);
        foreach (var (listener, binding) in bound)
        {
            forwarder._loops.Add(Task.Run(() => forwarder.AcceptLoopAsync(listener, binding)));
        }

        return forwarder;
    }

    private static void CheckDuplicates(IReadOnlyList<PortMapping> mappings)
    {
        if (mappings.Count == 0)
        {
            throw new PortForwardException("no ports to forward: give [LOCAL:]REMOTE, e.g. 8080 or 18080:8080");
        }

        foreach (var twice in mappings.Where(m => m.LocalPort != 0).GroupBy(m => m.LocalPort).Where(g => g.Count() > 1))
        {
            throw new PortForwardException($"local port {twice.Key} is given more than once ({string.Join(", ", twice)}); each local port can lead to one guest port");
        }
    }

    /// <summary>One mapping on all addresses, with the same local port everywhere (a free one picked for 0).</summary>
    private static List<(Socket, PortBinding)> BindMapping(PortMapping mapping, IReadOnlyList<IPAddress> addresses, bool optionalV6)
    {
        // With LOCAL 0 the first address picks the port; another program may hold that number on
        // a later address, so try a few picks before giving up.
        for (var attempt = 0; ; attempt++)
        {
            var port = mapping.LocalPort;
            var bound = new List<(Socket, PortBinding)>();
            try
            {
                foreach (var address in addresses)
                {
                    var socket = TryBind(address, port, mapping, optionalV6 && address.AddressFamily == AddressFamily.InterNetworkV6);
                    if (socket is null)
                    {
                        continue;
                    }

                    port = ((IPEndPoint)socket.LocalEndPoint!).Port;
                    bound.Add((socket, new PortBinding(address, port, mapping.RemotePort)));
                }

                return bound.Count > 0
                    ? bound
                    : throw new PortForwardException($"could not listen for {mapping} on any of {string.Join(", ", addresses)}");
            }
            catch (Exception ex)
            {
                DisposeAll(bound);
                if (ex is PortForwardException { InUse: true } && mapping.LocalPort == 0 && attempt < 8)
                {
                    continue;
                }

                throw;
            }
        }
    }

    private static void DisposeAll(List<(Socket Socket, PortBinding Binding)> bound)
    {
        foreach (var (socket, _) in bound)
        {
            socket.Dispose();
        }
    }

    private static Socket? TryBind(IPAddress address, int port, PortMapping mapping, bool optional)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                socket.DualMode = false; // [::]:P must not also take 0.0.0.0:P from the IPv4 listener
            }

            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(512);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var endpoint = new IPEndPoint(address, port);
            switch (ex.SocketErrorCode)
            {
                case SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported when optional:
                    return null; // no IPv6 loopback on this host: IPv4 alone then
                case SocketError.AddressAlreadyInUse:
                    throw new PortForwardException(
                        $"cannot forward {mapping}: {endpoint} is already in use by another program; pick another local port (LOCAL:{mapping.RemotePort}, or 0:{mapping.RemotePort} for a free one)",
                        inUse: true);
                case SocketError.AccessDenied:
                    throw new PortForwardException($"cannot forward {mapping}: listening on {endpoint} needs privileges (ports below 1024 need root); pick a local port of 1024 or more");
                case SocketError.AddressNotAvailable:
                    throw new PortForwardException($"cannot forward {mapping}: {address} is not an address of this host (--address)");
                default:
                    throw new PortForwardException($"cannot forward {mapping}: listening on {endpoint} failed: {ex.Message}");
            }
        }
    }

    private async Task AcceptLoopAsync(Socket listener, PortBinding binding)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue; // the client gave up before we took it
            }

            lock (_clients)
            {
                if (_stop.IsCancellationRequested)
                {
                    client.Close(0);
                    return;
                }

                _clients.Add(client);
            }

            Interlocked.Increment(ref _handlers);
            _ = Task.Run(() => HandleAsync(client, binding));
        }
    }

    private async Task HandleAsync(Socket client, PortBinding binding)
    {
        try
        {
            client.NoDelay = true;
            MuxStream stream;
            try
            {
                stream = await _connect(binding.RemotePort, _stop.Token);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !_stop.IsCancellationRequested)
            {
                _log($"port-forward {binding}: {ex.Message}");
                client.Close(0);
                return;
            }

            await using (stream)
            {
                var reply = await MuxRelay.RelayAsync(new SocketRelayEnd(client), stream);
                if (_describeFailure(reply) is { } failure && !_stop.IsCancellationRequested)
                {
                    _log($"port-forward {binding}: {failure}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        finally
        {
            lock (_clients)
            {
                _clients.Remove(client);
            }

            client.Dispose();
            Interlocked.Decrement(ref _handlers);
        }
    }

    /// <summary>Stops listening and resets the connections still open.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var (listener, _) in _listeners)
        {
            listener.Dispose();
        }

        await Task.WhenAll(_loops);
        Socket[] open;
        lock (_clients)
        {
            open = [.. _clients];
        }

        foreach (var client in open)
        {
            try
            {
                client.Close(0);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        for (var waited = 0; Volatile.Read(ref _handlers) > 0 && waited < 2000; waited += 20)
        {
            await Task.Delay(20);
        }

        _stop.Dispose();
    }
}

/// <summary>A port forward could not be set up; the message says which port and what to do.</summary>
public sealed class PortForwardException(string message, bool inUse = false) : OperationFailedException(message)
{
    /// <summary>The local port was taken by another program.</summary>
    public bool InUse { get; } = inUse;
}
