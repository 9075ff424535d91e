using System.Buffers.Binary;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Dns;

internal sealed partial class DnsResponder
{
    private async Task ServeTcpAsync(Socket listener, CancellationToken stopping)
    {
        while (true)
        {
            await _connections.WaitAsync(stopping);
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stopping);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                // The client gave up before we accepted; the listener is fine.
                _connections.Release();
                continue;
            }
            catch
            {
                _connections.Release();
                throw;
            }

            _ = ServeConnectionAsync(connection, stopping);
        }
    }

    /// <summary>
    /// Serves one connection: messages framed by a two-octet big-endian length (RFC 1035 §4.2.2),
    /// answered in order until the client closes, stays idle too long, or sends a length we do not
    /// read. Owns one slot of <see cref="_connections"/> and the socket.
    /// </summary>
    private async Task ServeConnectionAsync(Socket connection, CancellationToken stopping)
    {
        try
        {
            using var socket = connection;
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var prefix = new byte[2];
            while (true)
            {
                byte[] query;
                using (var idle = new CancellationTokenSource(_options.TcpIdleTimeout, _options.TimeProvider))
                using (var reading = CancellationTokenSource.CreateLinkedTokenSource(stopping, idle.Token))
                {
                    if (await stream.ReadAtLeastAsync(prefix, prefix.Length, throwOnEndOfStream: false, reading.Token) < prefix.Length)
                    {
                        return;
                    }

                    var length = BinaryPrimitives.ReadUInt16BigEndian(prefix);
                    if (length is 0 or > DnsQueryHandler.MaxQueryLength)
                    {
                        // Not read at all: the parser must never see an oversized message (see
                        // DnsQueryHandler.MaxQueryLength), and skipping it would only invite more.
                        _options.Events?.Invoke(new DnsQueryEvent(string.Empty, string.Empty, DnsDecision.Malformed, $"TCP message of {length} bytes: connection closed"));
                        return;
                    }

                    query = new byte[length];
                    await stream.ReadExactlyAsync(query, reading.Token);
                }

                byte[]? reply;
                await _queries.WaitAsync(stopping);
                try
                {
                    reply = await _handler.HandleAsync(query, stopping);
                }
                finally
                {
                    _queries.Release();
                }

                if (reply is null)
                {
                    // Malformed: nothing to say, but the framing is intact, so the next query is served.
                    continue;
                }

                var framed = new byte[2 + reply.Length];
                BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)reply.Length);
                reply.CopyTo(framed, 2);
                await stream.WriteAsync(framed, stopping);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // Idle timeout, shutdown, or the client went away: the connection ends, nothing else.
        }
        catch (Exception e)
        {
            ReportFault($"a TCP connection failed: {e.Message}");
        }
        finally
        {
            _connections.Release();
        }
    }
}
