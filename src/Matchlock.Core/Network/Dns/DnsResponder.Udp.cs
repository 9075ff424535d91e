using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Dns;

internal sealed partial class DnsResponder
{
    private async Task ServeUdpAsync(Socket socket, CancellationToken stopping)
    {
        // Big enough for any datagram, so an oversized one is seen whole and dropped rather than
        // silently truncated into something that parses.
        var buffer = GC.AllocateUninitializedArray<byte>(ushort.MaxValue);
        EndPoint any = socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        while (true)
        {
            // Waiting for a slot before reading is the back-pressure: past the bound, queries
            // queue in the kernel's socket buffer and the excess is dropped there.
            await _queries.WaitAsync(stopping);
            SocketReceiveFromResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, stopping);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                // An ICMP error from an earlier reply, surfaced on the next receive: not ours to fix.
                _queries.Release();
                continue;
            }
            catch
            {
                _queries.Release();
                throw;
            }

            var packet = buffer.AsSpan(0, Math.Min(received.ReceivedBytes, DnsQueryHandler.MaxQueryLength + 1)).ToArray();
            _ = AnswerUdpAsync(socket, packet, received.RemoteEndPoint, stopping);
        }
    }

    /// <summary>Answers one datagram; owns one slot of <see cref="_queries"/> and releases it.</summary>
    private async Task AnswerUdpAsync(Socket socket, byte[] packet, EndPoint client, CancellationToken stopping)
    {
        try
        {
            var reply = await _handler.HandleAsync(packet, stopping);
            if (reply is not null)
            {
                await socket.SendToAsync(reply, SocketFlags.None, client, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Shutting down: the guest's resolver retries or gives up, as with any lost datagram.
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException && stopping.IsCancellationRequested)
        {
            // The socket closed under the send during shutdown.
        }
        catch (Exception e)
        {
            // One query failing (a throwing callback, a send error) must not stop the responder;
            // the guest sees a lost datagram and retries.
            ReportFault($"a UDP query from {client} failed: {e.Message}");
        }
        finally
        {
            _queries.Release();
        }
    }
}
