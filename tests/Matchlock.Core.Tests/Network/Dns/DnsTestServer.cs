using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Makaretu.Dns;
using Matchlock.Core.Network.Dns;

namespace Matchlock.Core.Tests.Network.Dns;

/// <summary>
/// A responder on loopback sockets (port 0) with a fake resolver, and a client that speaks to it
/// with messages built by the same library. Nothing here asks the host's resolver.
/// </summary>
internal sealed class DnsTestServer : IAsyncDisposable
{
    private DnsTestServer(DnsResponder responder, IPEndPoint udp, IPEndPoint tcp, FakeResolver resolver, ConcurrentQueue<DnsQueryEvent> events)
    {
        Responder = responder;
        UdpEndPoint = udp;
        TcpEndPoint = tcp;
        Resolver = resolver;
        Events = events;
    }

    public DnsResponder Responder { get; }

    public IPEndPoint UdpEndPoint { get; }

    public IPEndPoint TcpEndPoint { get; }

    public FakeResolver Resolver { get; }

    public ConcurrentQueue<DnsQueryEvent> Events { get; }

    /// <summary>Starts a responder; <paramref name="configure"/> adjusts the defaults (allow *.example.com).</summary>
    public static DnsTestServer Start(FakeResolver? resolver = null, Func<DnsResponderOptions, DnsResponderOptions>? configure = null)
    {
        resolver ??= new FakeResolver();
        var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tcp.Listen(16);
        var events = new ConcurrentQueue<DnsQueryEvent>();
        var options = new DnsResponderOptions
        {
            Udp = udp,
            Tcp = tcp,
            MayResolve = name => name.EndsWith(".example.com", StringComparison.Ordinal),
            Resolve = resolver.ResolveAsync,
            Events = events.Enqueue,
        };
        options = configure?.Invoke(options) ?? options;
        return new DnsTestServer(DnsResponder.Start(options), (IPEndPoint)udp.LocalEndPoint!, (IPEndPoint)tcp.LocalEndPoint!, resolver, events);
    }

    public static Message Query(string name, DnsType type, ushort id = 0x4242)
    {
        var query = new Message { Id = id, RD = true };
        query.Questions.Add(new Question { Name = name, Type = type, Class = DnsClass.IN });
        return query;
    }

    public Task<Message?> AskUdpAsync(Message query, TimeSpan? wait = null) => AskUdpAsync(query.ToByteArray(), wait);

    /// <summary>Sends one datagram; the reply, or null when none came within <paramref name="wait"/>.</summary>
    public async Task<Message?> AskUdpAsync(byte[] packet, TimeSpan? wait = null)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await client.ConnectAsync(UdpEndPoint);
        await client.SendAsync(packet, SocketFlags.None);
        return await ReceiveUdpAsync(client, wait ?? TimeSpan.FromSeconds(5));
    }

    public static async Task<Message?> ReceiveUdpAsync(Socket client, TimeSpan wait)
    {
        var buffer = new byte[ushort.MaxValue];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            var n = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            return (Message)new Message().Read(buffer, 0, n);
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // ICMP port unreachable: nobody listens any more.
            return null;
        }
    }

    public async Task<Socket> ConnectTcpAsync()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(TcpEndPoint, TestContext.Current.CancellationToken);
        return client;
    }

    public static async Task SendTcpAsync(Socket client, byte[] message)
    {
        var framed = new byte[2 + message.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)message.Length);
        message.CopyTo(framed, 2);
        await client.SendAsync(framed, SocketFlags.None, TestContext.Current.CancellationToken);
    }

    /// <summary>Reads one length-prefixed reply, or null when the responder closed the connection.</summary>
    public static async Task<Message?> ReceiveTcpAsync(Socket client)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        await using var stream = new NetworkStream(client, ownsSocket: false);
        var prefix = new byte[2];
        try
        {
            if (await stream.ReadAtLeastAsync(prefix, 2, throwOnEndOfStream: false, timeout.Token) < 2)
            {
                return null;
            }
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
            // Closed with our bytes unread, so the kernel reset the connection.
            return null;
        }

        var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(prefix)];
        await stream.ReadExactlyAsync(body, timeout.Token);
        return (Message)new Message().Read(body);
    }

    public ValueTask DisposeAsync() => Responder.DisposeAsync();
}

/// <summary>Answers from a table, records every name it was asked, and can be slowed down.</summary>
internal sealed class FakeResolver
{
    private int _inFlight;
    private int _maxInFlight;

    public ConcurrentDictionary<string, IPAddress[]> Answers { get; } = new(StringComparer.Ordinal)
    {
        ["api.example.com"] = [IPAddress.Parse("192.0.2.10"), IPAddress.Parse("192.0.2.11")],
    };

    public ConcurrentQueue<string> Asked { get; } = new();

    /// <summary>Delay before answering; <see cref="Timeout.InfiniteTimeSpan"/> never answers and ignores cancellation.</summary>
    public TimeSpan Delay { get; set; } = TimeSpan.Zero;

    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    public async Task<IPAddress[]> ResolveAsync(string name, AddressFamily family, CancellationToken cancellationToken)
    {
        Asked.Enqueue(name);
        var now = Interlocked.Increment(ref _inFlight);
        int seen;
        while (now > (seen = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, seen) != seen)
        {
        }

        try
        {
            if (Delay == Timeout.InfiniteTimeSpan)
            {
                // A resolver that ignores cancellation: only the responder's own timeout frees the guest.
                await new TaskCompletionSource().Task;
            }
            else if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, cancellationToken);
            }

            return Answers.TryGetValue(name, out var addresses) ? addresses : [IPAddress.Parse("192.0.2.99")];
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}
