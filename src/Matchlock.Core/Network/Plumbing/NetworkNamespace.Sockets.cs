using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Plumbing;

internal sealed partial class NetworkNamespace
{
    /// <summary>
    /// A listening TCP socket on the gateway address inside the sandbox's namespace (backlog 512).
    /// The caller serves it; this network closes it on dispose.
    /// </summary>
    /// <param name="port">0: any free port (read it from <see cref="Socket.LocalEndPoint"/>).</param>
    public Socket OpenTcpListener(int port = 0) => Open(SocketType.Stream, ProtocolType.Tcp, port, listen: true);

    /// <summary>A UDP socket bound to the gateway address inside the sandbox's namespace.</summary>
    /// <param name="port">0: any free port.</param>
    public Socket OpenUdp(int port = 0) => Open(SocketType.Dgram, ProtocolType.Udp, port, listen: false);

    /// <summary>The port a socket from <see cref="OpenTcpListener"/> or <see cref="OpenUdp"/> is bound to.</summary>
    public static int PortOf(Socket socket) => ((IPEndPoint)socket.LocalEndPoint!).Port;

    private Socket Open(SocketType type, ProtocolType protocol, int port, bool listen)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ThrowIfDisposed();
        var socket = InNamespace(() =>
        {
            // socket(2) runs here, on the thread that joined the namespace; bind and listen
            // act on the socket's own namespace whichever thread calls them, but doing them
            // here keeps the whole setup in one place.
            var s = new Socket(AddressFamily.InterNetwork, type, protocol);
            try
            {
                s.Bind(new IPEndPoint(Options.Gateway, port));
                if (listen)
                {
                    s.Listen(512);
                }

                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });

        lock (_lock)
        {
            if (!_disposed)
            {
                _sockets.Add(socket);
                return socket;
            }
        }

        socket.Dispose();
        throw new ObjectDisposedException(nameof(NetworkNamespace));
    }
}
