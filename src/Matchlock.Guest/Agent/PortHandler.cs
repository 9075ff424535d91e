using System.Net;
using System.Net.Sockets;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Agent;

/// <summary>
/// port_connect: one forwarded TCP connection from the host to a service on the guest's loopback.
/// Relays the stream's stdin channel into the socket and the socket into its stdout channel, with
/// half-close both ways, so request/response protocols that end with a shutdown(SHUT_WR) work.
/// </summary>
/// <remarks>
/// Loopback reaches services bound to 127.0.0.1 and to 0.0.0.0, which is where dev servers listen;
/// the guest has IPv6 switched off, so [::] listeners are reached through their IPv4 mapping.
/// </remarks>
internal static class PortHandler
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    internal static async Task<GuestReply> HandleAsync(MuxStream stream, PortConnectRequest request)
    {
        if (request.Port is < 1 or > 65535)
        {
            return GuestReply.Failure($"port_connect: {request.Port} is not a TCP port (1-65535)", "EINVAL");
        }

        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using (socket)
        {
            using (var timeout = new CancellationTokenSource(ConnectTimeout))
            {
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, request.Port), timeout.Token);
                }
                catch (SocketException e)
                {
                    return GuestReply.Failure($"port_connect: 127.0.0.1:{request.Port}: {Describe(e.SocketErrorCode)}", Code(e.SocketErrorCode));
                }
                catch (OperationCanceledException)
                {
                    return GuestReply.Failure($"port_connect: 127.0.0.1:{request.Port}: no answer within {ConnectTimeout.TotalSeconds:0} s", "ETIMEDOUT");
                }
            }

            var inbound = ToSocketAsync(stream, socket);
            var outbound = FromSocketAsync(socket, stream);
            await Task.WhenAll(inbound, outbound);
            return new GuestReply { Size = await outbound };
        }
    }

    /// <summary>Host → service. The host's EOF becomes shutdown(SHUT_WR); a reset stream closes the socket.</summary>
    private static async Task ToSocketAsync(MuxStream stream, Socket socket)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(StreamChannel.Stdin, buffer, CancellationToken.None)) > 0)
            {
                await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
            }

            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The service closed its end: the other direction sees it too and ends the relay.
        }
        catch (Exception e) when (e is MuxStreamResetException or MuxConnectionClosedException)
        {
            // The host gave up on the connection (its client went away): drop ours.
            socket.Close(0);
        }
    }

    /// <summary>Service → host; returns the bytes relayed. The service's EOF becomes EOF on stdout.</summary>
    private static async Task<long> FromSocketAsync(Socket socket, MuxStream stream)
    {
        var buffer = new byte[64 * 1024];
        long total = 0;
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                await stream.WriteAsync(StreamChannel.Stdout, buffer.AsMemory(0, n), CancellationToken.None);
                total += n;
            }

            await stream.WriteEofAsync(StreamChannel.Stdout, CancellationToken.None);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            await TryEofAsync(stream);
        }
        catch (Exception e) when (e is MuxStreamResetException or MuxConnectionClosedException or InvalidOperationException)
        {
            socket.Close(0);
        }

        return total;
    }

    private static async Task TryEofAsync(MuxStream stream)
    {
        try
        {
            await stream.WriteEofAsync(StreamChannel.Stdout, CancellationToken.None);
        }
        catch (Exception e) when (e is MuxStreamResetException or MuxConnectionClosedException or InvalidOperationException)
        {
            // Nobody left to tell.
        }
    }

    private static string Code(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => GuestErrorCodes.ConnectionRefused,
        SocketError.TimedOut => "ETIMEDOUT",
        SocketError.NetworkUnreachable => "ENETUNREACH",
        SocketError.AddressNotAvailable => "EADDRNOTAVAIL",
        _ => "EIO",
    };

    private static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "connection refused (nothing listens on that port in the guest)",
        SocketError.NetworkUnreachable => "network unreachable (the guest's loopback is down)",
        _ => error.ToString(),
    };
}
