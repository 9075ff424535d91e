using System.Net.Sockets;
using System.Text;

namespace Matchlock.Core.Vm;

/// <summary>
/// Waits until QEMU has finished initializing by completing the QMP handshake.
/// </summary>
/// <remarks>
/// QEMU connects chardevs (our channel) before it loads the kernel, so an accepted channel does
/// not mean the start worked: a bad kernel still makes QEMU exit right after. Its QMP greeting,
/// though, is only sent once the main loop runs, i.e. after machine init and kernel loading
/// (measured: 28 ms after spawn for a good kernel; a reset connection for a bad one). The
/// connection is closed again: QEMU keeps listening (server=on) for later QMP clients, and an
/// unread QMP connection would accumulate events.
/// </remarks>
internal static class QmpReadiness
{
    public static async Task WaitAsync(string socketPath, CancellationToken cancellationToken)
    {
        using var socket = await ConnectAsync(socketPath, cancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8, false, 4096, leaveOpen: true);
        var greeting = await reader.ReadLineAsync(cancellationToken);
        if (greeting is null || !greeting.Contains("\"QMP\"", StringComparison.Ordinal))
        {
            throw new IOException($"unexpected QMP greeting: {greeting ?? "<closed>"}");
        }

        await stream.WriteAsync("{\"execute\":\"qmp_capabilities\"}\n"u8.ToArray(), cancellationToken);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Contains("\"return\"", StringComparison.Ordinal))
            {
                return;
            }

            if (line.Contains("\"error\"", StringComparison.Ordinal))
            {
                throw new IOException($"QMP capabilities negotiation failed: {line}");
            }
        }

        throw new IOException("QMP connection closed during the handshake");
    }

    private static async Task<Socket> ConnectAsync(string path, CancellationToken cancellationToken)
    {
        // QEMU creates its listening sockets in command-line order while it starts; until then
        // connect() fails with ENOENT or ECONNREFUSED. Our caller bounds the wait.
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                return socket;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.ConnectionRefused)
            {
                socket.Dispose();
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            await Task.Delay(5, cancellationToken);
        }
    }
}
