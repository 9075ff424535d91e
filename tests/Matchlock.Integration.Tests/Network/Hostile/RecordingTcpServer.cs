using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// A loopback TCP server (optionally TLS with leaves from the test upstream CA) that records every
/// byte of every connection. It answers something HTTP-ish so clients proceed: a one-shot
/// <c>200</c> with <c>Connection: close</c> after the first bytes, or, with a banner, speaks
/// first and acknowledges every read (a server-speaks-first protocol for the raw-TCP rules).
/// </summary>
internal sealed class RecordingTcpServer : IAsyncDisposable
{
    private static readonly byte[] HttpAnswer = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nrecorded\n");

    private readonly Socket _listener;
    private readonly string _sink;
    private readonly Recordings _recordings;
    private readonly CertificateAuthority? _tls;
    private readonly string? _banner;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private int _connections;

    public RecordingTcpServer(string sink, IPAddress address, Recordings recordings, CertificateAuthority? tls = null, string? banner = null)
    {
        _sink = sink;
        _recordings = recordings;
        _tls = tls;
        _banner = banner;
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address, 0));
        _listener.Listen(512);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>Connections accepted so far (including ones that sent nothing).</summary>
    public int Connections => Volatile.Read(ref _connections);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        try
        {
            await _accepting;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopping ends the accept loop with one of these.
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var socket = await _listener.AcceptAsync(_stop.Token);
            Interlocked.Increment(ref _connections);
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var record = _recordings.Open(_sink, overTls: _tls is not null);
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        lifetime.CancelAfter(TimeSpan.FromSeconds(60));
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            if (_tls is { } ca)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(lifetime.Token);
                handshake.CancelAfter(TimeSpan.FromSeconds(15));
                await ssl.AuthenticateAsServerAsync(
                    new SslServerAuthenticationOptions
                    {
                        ServerCertificateSelectionCallback = (_, name) => ca.IssueLeaf(HostName.Parse(string.IsNullOrEmpty(name) ? "no-sni.test" : name)),
                    },
                    handshake.Token);
                record.Host = ssl.TargetHostName;
            }

            if (_banner is not null)
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(_banner), lifetime.Token);
            }

            var buffer = new byte[16 * 1024];
            var answered = false;
            while (true)
            {
                // Idle bound: a quiet peer ends the recording (1 s once answered, 10 s before).
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(lifetime.Token);
                idle.CancelAfter(answered && _banner is null ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(10));
                var n = await stream.ReadAsync(buffer, idle.Token);
                if (n == 0)
                {
                    break;
                }

                record.Append(buffer.AsSpan(0, n));
                if (_banner is not null)
                {
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"250 recorded {n} bytes\r\n"), lifetime.Token);
                }
                else if (!answered)
                {
                    answered = true;
                    await stream.WriteAsync(HttpAnswer, lifetime.Token);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            // The peer went away, misbehaved or idled: what arrived is recorded either way.
            record.Append($"\n[recorder: {e.GetType().Name}]");
        }
        finally
        {
            await stream.DisposeAsync();
        }
    }
}
