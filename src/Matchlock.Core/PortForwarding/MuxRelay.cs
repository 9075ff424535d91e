using System.Net.Sockets;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;

namespace Matchlock.Core.PortForwarding;

/// <summary>
/// One forwarded connection: relays a client (a host TCP socket, or a control-socket stream that
/// carries one) and a <see cref="MuxStream"/> leading to the guest port, whose stdin channel goes
/// to the service and whose stdout channel comes from it. Half-closes travel both ways.
/// </summary>
/// <remarks>
/// Endings: the client vanishing resets the stream (the guest then drops its connection); the
/// stream's reply or reset ends the client's half too — with a reset (RST) when the guest
/// could not connect, so a client sees "connection reset" rather than an empty answer.
/// </remarks>
internal static class MuxRelay
{
    private const int BufferSize = 64 * 1024;

    /// <summary>
    /// Relays until the guest side is done and the client's data has gone (or cannot go) to it;
    /// returns the stream's reply, or null when it was reset. The caller answers its own client
    /// with it: for a socket the connection is already closed or reset by then.
    /// </summary>
    public static async Task<ReadOnlyMemory<byte>?> RelayAsync(IRelayEnd client, MuxStream upstream)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(upstream);
        var up = PumpUpAsync(client, upstream);

        // Down ends with the guest's data: EOF, its reply, a reset, or a client that stopped reading.
        var cleanEnd = await PumpDownAsync(upstream, client);
        if (!cleanEnd)
        {
            // The guest never sent its side's end (it could not connect, or the stream broke).
            await client.AbortAsync();
        }
        else if (await Task.WhenAny(up, upstream.Reply) != up)
        {
            // The guest is done (its service closed) while the client may still be sending:
            // nothing can take those bytes any more.
            await client.AbortAsync();
        }

        ReadOnlyMemory<byte>? reply;
        try
        {
            reply = await upstream.Reply;
        }
        catch (Exception ex) when (ex is MuxStreamResetException or MuxConnectionClosedException)
        {
            reply = null;
        }

        return reply;
    }

    /// <summary>Client → guest.</summary>
    private static async Task PumpUpAsync(IRelayEnd client, MuxStream upstream)
    {
        var buffer = new byte[BufferSize];
        try
        {
            int n;
            while ((n = await client.ReadAsync(buffer)) > 0)
            {
                await upstream.WriteAsync(StreamChannel.Stdin, buffer.AsMemory(0, n), CancellationToken.None);
            }

            await upstream.WriteEofAsync(StreamChannel.Stdin, CancellationToken.None);
        }
        catch (Exception ex) when (ex is MuxStreamResetException or MuxConnectionClosedException or InvalidOperationException)
        {
            // The stream already ended (reply or reset): the relay's other half reports it.
        }
        catch (Exception ex) when (IsClientFailure(ex))
        {
            await upstream.TryResetAsync("the forwarded connection's client went away");
        }
    }

    /// <summary>Guest → client; false when the guest side ended without its EOF (failure or reset).</summary>
    private static async Task<bool> PumpDownAsync(MuxStream upstream, IRelayEnd client)
    {
        var buffer = new byte[BufferSize];
        try
        {
            int n;
            while ((n = await upstream.ReadAsync(StreamChannel.Stdout, buffer, CancellationToken.None)) > 0)
            {
                await client.WriteAsync(buffer.AsMemory(0, n));
            }
        }
        catch (Exception ex) when (ex is MuxStreamResetException or MuxConnectionClosedException)
        {
            return false;
        }
        catch (Exception ex) when (IsClientFailure(ex))
        {
            await upstream.TryResetAsync("the forwarded connection's client went away");
            return true;
        }

        if (!upstream.ReceivedEof(StreamChannel.Stdout))
        {
            return false;
        }

        try
        {
            await client.EndWritesAsync();
        }
        catch (Exception ex) when (IsClientFailure(ex))
        {
            // The client closed first; the up direction sees that.
        }

        return true;
    }

    private static bool IsClientFailure(Exception ex) =>
        ex is SocketException or IOException or ObjectDisposedException or MuxStreamResetException or MuxConnectionClosedException;
}

/// <summary>The client half of a forwarded connection.</summary>
internal interface IRelayEnd
{
    /// <summary>Reads what the client sends; 0 at its EOF.</summary>
    ValueTask<int> ReadAsync(Memory<byte> buffer);

    ValueTask WriteAsync(ReadOnlyMemory<byte> data);

    /// <summary>Half-close: the guest service sent all it will.</summary>
    ValueTask EndWritesAsync();

    /// <summary>Ends the client's connection abnormally (TCP reset).</summary>
    ValueTask AbortAsync();
}

/// <summary>A host TCP client of a port forward.</summary>
internal sealed class SocketRelayEnd(Socket socket) : IRelayEnd
{
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => socket.ReceiveAsync(buffer, SocketFlags.None);

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data) => await socket.SendAsync(data, SocketFlags.None);

    public ValueTask EndWritesAsync()
    {
        socket.Shutdown(SocketShutdown.Send);
        return ValueTask.CompletedTask;
    }

    public ValueTask AbortAsync()
    {
        try
        {
            socket.Close(0); // linger 0: RST, and pending reads end
        }
        catch (ObjectDisposedException)
        {
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A forwarded connection arriving over a control-socket stream (<c>matchlock port-forward</c>):
/// the client's bytes come on its stdin channel, the service's go back on stdout.
/// </summary>
internal sealed class MuxRelayEnd(MuxStream stream) : IRelayEnd
{
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => stream.ReadAsync(StreamChannel.Stdin, buffer, CancellationToken.None);

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => stream.WriteAsync(StreamChannel.Stdout, data, CancellationToken.None);

    public ValueTask EndWritesAsync() => stream.WriteEofAsync(StreamChannel.Stdout, CancellationToken.None);

    /// <summary>
    /// Nothing to do here: the owner answers the stream with how the guest side ended, and the
    /// client resets its TCP connection from that answer (a reset here would lose the reason).
    /// </summary>
    public ValueTask AbortAsync() => ValueTask.CompletedTask;
}
