using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Dns;

/// <summary>
/// The sandbox's DNS server: the guest's resolv.conf points at it, and nftables in the sandbox's
/// network namespace redirects every UDP and TCP query on port 53 to it (docs/ARCHITECTURE.md D7). It answers
/// A and AAAA for names the network policy allows and nothing else, so DNS is neither a way out
/// of the sandbox nor a way around the egress proxy's pins (D8).
/// </summary>
/// <remarks>
/// What each query gets is decided in <see cref="DnsQueryHandler"/>; this type owns the sockets,
/// the loops that serve them and the bounds on concurrency. Both transports share one bound on
/// queries in flight (<see cref="DnsResponderOptions.MaxConcurrentQueries"/>). Disposal stops
/// both loops, closes the sockets and waits for the queries in flight, whose resolutions are
/// cancelled.
/// </remarks>
internal sealed partial class DnsResponder : IAsyncDisposable
{
    private readonly DnsResponderOptions _options;
    private readonly DnsQueryHandler _handler;
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>One slot per query in flight; disposal drains them by taking every slot.</summary>
    private readonly SemaphoreSlim _queries;

    /// <summary>One slot per TCP connection served; drained like <see cref="_queries"/>.</summary>
    private readonly SemaphoreSlim _connections;

    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;
    private int _disposed;

    private DnsResponder(DnsResponderOptions options)
    {
        _options = options;
        _handler = new DnsQueryHandler(options);
        _queries = new SemaphoreSlim(options.MaxConcurrentQueries, options.MaxConcurrentQueries);
        _connections = new SemaphoreSlim(options.MaxTcpConnections, options.MaxTcpConnections);
        var stopping = _stopping.Token;
        _udpLoop = options.Udp is { } udp ? Task.Run(() => ServeUdpAsync(udp, stopping), CancellationToken.None) : Task.CompletedTask;
        _tcpLoop = options.Tcp is { } tcp ? Task.Run(() => ServeTcpAsync(tcp, stopping), CancellationToken.None) : Task.CompletedTask;
    }

    /// <summary>
    /// Starts serving on the sockets of <paramref name="options"/>, which the responder owns from
    /// now on. Returns at once; queries are served until <see cref="DisposeAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Neither socket given, a socket of the wrong type, or a bound below one.</exception>
    public static DnsResponder Start(DnsResponderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Udp is null && options.Tcp is null)
        {
            throw new ArgumentException("Give the DNS responder a UDP socket, a listening TCP socket, or both.", nameof(options));
        }

        if (options.Udp is { SocketType: not SocketType.Dgram })
        {
            throw new ArgumentException("DnsResponderOptions.Udp must be a datagram socket.", nameof(options));
        }

        if (options.Tcp is { SocketType: not SocketType.Stream })
        {
            throw new ArgumentException("DnsResponderOptions.Tcp must be a stream socket.", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConcurrentQueries, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTcpConnections, 1, nameof(options));
        return new DnsResponder(options);
    }

    /// <summary>Stops serving, closes both sockets and waits for the queries in flight.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        _options.Udp?.Dispose();
        _options.Tcp?.Dispose();
        await _udpLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _tcpLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        for (var i = 0; i < _options.MaxTcpConnections; i++)
        {
            await _connections.WaitAsync(CancellationToken.None);
        }

        for (var i = 0; i < _options.MaxConcurrentQueries; i++)
        {
            await _queries.WaitAsync(CancellationToken.None);
        }

        _stopping.Dispose();
        _queries.Dispose();
        _connections.Dispose();
    }

    /// <summary>
    /// Reports a failure of the serving machinery itself (not of one query's resolution); the
    /// responder keeps serving.
    /// </summary>
    private void ReportFault(string reason) =>
        _options.Events?.Invoke(new DnsQueryEvent(string.Empty, string.Empty, DnsDecision.Failed, reason));
}
