using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Tests.Network;

/// <summary>
/// A raw TCP upstream on 127.0.0.1 that counts connections and keeps every byte it received; it may
/// speak first (a banner, as SMTP does) and may echo.
/// </summary>
internal sealed class RecordingTcpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly MemoryStream _received = new();
    private int _connections;

    private RecordingTcpServer(TcpListener listener, string? banner, bool echo)
    {
        _listener = listener;
        _accepting = AcceptAsync(banner, echo);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Everything received on every connection, in arrival order.</summary>
    public byte[] Received
    {
        get
        {
            lock (_received)
            {
                return _received.ToArray();
            }
        }
    }

    public static RecordingTcpServer Start(string? banner, bool echo)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new RecordingTcpServer(listener, banner, echo);
    }

    private async Task AcceptAsync(string? banner, bool echo)
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                _ = ServeAsync(client, banner, echo);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopped.
        }
    }

    private async Task ServeAsync(TcpClient client, string? banner, bool echo)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                if (banner is not null)
                {
                    await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(banner), _stop.Token);
                }

                var buffer = new byte[4096];
                int n;
                while ((n = await stream.ReadAsync(buffer, _stop.Token)) > 0)
                {
                    lock (_received)
                    {
                        _received.Write(buffer, 0, n);
                    }

                    if (echo)
                    {
                        await stream.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
            {
                // The proxy or the test went away.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
