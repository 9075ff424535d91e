using System.Net;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using Matchlock.Core.Network.Policy;
using Microsoft.AspNetCore.Connections;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// Relays a connection that is neither TLS nor HTTP byte for byte to its original destination, when
/// the policy allows raw TCP there (<see cref="NetworkPolicy.CheckRawTcp"/>, checked again here at
/// connect time); otherwise closes it. Half-closes are propagated in both directions.
/// </summary>
internal sealed class TcpRelay(NetworkPolicy policy, EventPublisher events)
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(15);

    public async Task RelayAsync(ConnectionContext connection, ProxyConnectionFeature feature)
    {
        var destination = feature.OriginalDestination;
        var started = Stopwatch.GetTimestamp();
        var decision = policy.CheckRawTcp(destination.Address, destination.Port, out var names);
        var host = names ?? HostName.FromAddress(destination.Address).Value;
        if (!decision.Allowed)
        {
            events.Publish(NetworkEventKind.Denied, host, destination.Port, protocol: "tcp", reason: decision.Reason);
            return;
        }

        var dial = new IPEndPoint(policy.UpstreamAddress(destination.Address), destination.Port);
        using var upstream = new Socket(dial.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
            timeout.CancelAfter(ConnectTimeout);
            await upstream.ConnectAsync(dial, timeout.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            events.Publish(NetworkEventKind.Error, host, destination.Port, protocol: "tcp", reason: $"could not connect to {destination}: {e.Message}");
            return;
        }

        var up = PumpUpAsync(connection.Transport.Input, upstream);
        var down = PumpDownAsync(upstream, connection.Transport.Output);
        await Task.WhenAll(up, down);
        events.Publish(NetworkEventKind.Passthrough, host, destination.Port, protocol: "tcp", reason: decision.Reason,
            bytesUp: up.Result, bytesDown: down.Result, duration: Stopwatch.GetElapsedTime(started));
    }

    private static async Task<long> PumpUpAsync(PipeReader guest, Socket upstream)
    {
        long total = 0;
        try
        {
            while (true)
            {
                var result = await guest.ReadAsync();
                foreach (var segment in result.Buffer)
                {
                    await upstream.SendAsync(segment, SocketFlags.None);
                    total += segment.Length;
                }

                guest.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }

            upstream.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or IOException or ConnectionResetException or ObjectDisposedException)
        {
            // One side went away; closing the other is all that is left to do.
            upstream.Close();
        }

        await guest.CompleteAsync();
        return total;
    }

    private static async Task<long> PumpDownAsync(Socket upstream, PipeWriter guest)
    {
        long total = 0;
        try
        {
            while (true)
            {
                var memory = guest.GetMemory(16 * 1024);
                var n = await upstream.ReceiveAsync(memory, SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                guest.Advance(n);
                total += n;
                var flush = await guest.FlushAsync();
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            // Upstream reset: end the guest side too.
        }

        await guest.CompleteAsync();
        return total;
    }
}
