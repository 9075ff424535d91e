using System.Net;
using System.Net.Sockets;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// A datagram recorder: a UDP socket on a loopback address, or (with <see cref="Icmp"/>) a raw
/// ICMP socket that sees every ICMP message delivered to the host's network namespace. Each
/// datagram becomes one <see cref="Recorded"/>. An optional <c>answer</c> makes it a tiny server.
/// </summary>
internal sealed class RecordingUdpServer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly string _sink;
    private readonly Recordings _recordings;
    private readonly Func<byte[], byte[]?>? _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _receiving;

    private RecordingUdpServer(Socket socket, string sink, Recordings recordings, Func<byte[], byte[]?>? answer)
    {
        _socket = socket;
        _sink = sink;
        _recordings = recordings;
        _answer = answer;
        _receiving = ReceiveLoopAsync();
    }

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    /// <summary>UDP on <paramref name="address"/>:<paramref name="port"/> (0: any free port).</summary>
    public static RecordingUdpServer Udp(string sink, IPAddress address, int port, Recordings recordings, Func<byte[], byte[]?>? answer = null)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(address, port));
        return new RecordingUdpServer(socket, sink, recordings, answer);
    }

    /// <summary>A raw ICMP socket (needs CAP_NET_RAW): records the host's incoming ICMP, IP header included.</summary>
    public static RecordingUdpServer Icmp(string sink, Recordings recordings)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp);
        socket.Bind(new IPEndPoint(IPAddress.Any, 0));
        return new RecordingUdpServer(socket, sink, recordings, null);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _socket.Dispose();
        try
        {
            await _receiving;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping ends the receive loop with one of these.
        }

        _stop.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[65536];
        EndPoint any = _socket.AddressFamily == AddressFamily.InterNetworkV6 ? new IPEndPoint(IPAddress.IPv6Any, 0) : new IPEndPoint(IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token);
            var packet = buffer.AsSpan(0, received.ReceivedBytes).ToArray();
            _recordings.Open(_sink).Append(packet);
            if (_answer?.Invoke(packet) is { } reply)
            {
                await _socket.SendToAsync(reply, SocketFlags.None, received.RemoteEndPoint, _stop.Token);
            }
        }
    }
}
