using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Matchlock.Core.PortForwarding;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol.Messages;
using static Matchlock.Guest.Tests.AgentHarness;
using Matchlock.Tests;

namespace Matchlock.Guest.Tests;

/// <summary>
/// Port forwarding without a VM: the host's listeners and relay (<see cref="PortForwarder"/>,
/// <see cref="MuxRelay"/>) drive the guest's port_connect handler over the in-memory link; the
/// "guest service" is a TCP server on this machine's loopback, which is where the handler connects.
/// </summary>
public sealed class PortForwardTests
{
    private static readonly TimeSpan Timeout = ProcessTestSupport.TestTimeout;

    [Fact]
    public async Task Bytes_go_through_intact_both_ways_with_half_close()
    {
        await using var harness = new AgentHarness();
        using var service = EchoDigestService.Start();
        await using var forwarder = Forward(harness, service.Port, out _);

        var payload = RandomNumberGenerator.GetBytes(8 * 1024 * 1024);
        var answer = await SendAndReceiveAsync(forwarder.Bindings[0].Endpoint, payload);

        // The service answers after our EOF: the digest proves every byte arrived in order.
        Assert.Equal(Convert.ToHexString(SHA256.HashData(payload)), System.Text.Encoding.ASCII.GetString(answer));
    }

    [Fact]
    public async Task Many_connections_run_at_once_on_both_loopbacks()
    {
        await using var harness = new AgentHarness();
        using var service = EchoDigestService.Start();
        await using var forwarder = Forward(harness, service.Port, out _);
        Assert.Contains(forwarder.Bindings, b => b.Address.Equals(IPAddress.Loopback));
        Assert.Contains(forwarder.Bindings, b => b.Address.Equals(IPAddress.IPv6Loopback));
        Assert.Single(forwarder.Bindings.Select(b => b.LocalPort).Distinct());

        var clients = Enumerable.Range(0, 32).Select(async i =>
        {
            var payload = RandomNumberGenerator.GetBytes(64 * 1024 + i);
            var answer = await SendAndReceiveAsync(forwarder.Bindings[i % forwarder.Bindings.Count].Endpoint, payload);
            return System.Text.Encoding.ASCII.GetString(answer) == Convert.ToHexString(SHA256.HashData(payload));
        });
        Assert.All(await Task.WhenAll(clients), Assert.True);
        Assert.True(service.Accepted >= 32);
    }

    [Fact]
    public async Task A_port_nothing_listens_on_resets_the_client_and_says_why()
    {
        await using var harness = new AgentHarness();
        int closedPort;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            closedPort = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        await using var forwarder = Forward(harness, closedPort, out var log);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        // The reset can beat the client's own connect completion (then connect reports it).
        var error = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            await client.ConnectAsync(IPEndPoint.Parse(forwarder.Bindings[0].Endpoint), Token);
            await client.ReceiveAsync(new byte[16], SocketFlags.None, Token).AsTask().WaitAsync(Timeout, Token);
        });
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        await WaitForAsync(() => log.Any(l => l.Contains("connection refused", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_client_going_away_closes_the_guest_side_connection()
    {
        await using var harness = new AgentHarness();
        using var service = EchoDigestService.Start();
        await using var forwarder = Forward(harness, service.Port, out _);
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(IPEndPoint.Parse(forwarder.Bindings[0].Endpoint), Token);
            await client.SendAsync(new byte[1000], SocketFlags.None, Token);
            await WaitForAsync(() => service.Received >= 1000);
            client.Close(0); // RST, without EOF
        }

        await WaitForAsync(() => service.Aborted == 1);
        await WaitForAsync(() => forwarder.ActiveConnections == 0);
    }

    [Fact]
    public async Task A_taken_port_is_refused_with_the_address_and_what_to_do()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var error = Assert.Throws<PortForwardException>(() => PortForwarder.Start([new PortMapping(port, 80)], [IPAddress.Loopback], NeverConnect, _ => null, _ => { }));
        Assert.True(error.InUse);
        Assert.Contains($"127.0.0.1:{port} is already in use", error.Message, StringComparison.Ordinal);
        Assert.Contains($"0:80", error.Message, StringComparison.Ordinal);

        // All or nothing: the first mapping's listener is released when the second fails.
        var free = FreePort();
        Assert.Throws<PortForwardException>(() => PortForwarder.Start([new PortMapping(free, 80), new PortMapping(port, 81)], [IPAddress.Loopback], NeverConnect, _ => null, _ => { }));
        using var again = new TcpListener(IPAddress.Loopback, free);
        again.Start();

        var twice = Assert.Throws<PortForwardException>(() => PortForwarder.Start([new PortMapping(free + 1, 80), new PortMapping(free + 1, 81)], null, NeverConnect, _ => null, _ => { }));
        Assert.Contains("more than once", twice.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("8080", 8080, 8080)]
    [InlineData("18080:80", 18080, 80)]
    [InlineData("0:80", 0, 80)]
    [InlineData(" 1:65535 ", 1, 65535)]
    public void Mappings_parse(string text, int local, int remote) => Assert.Equal(new PortMapping(local, remote), PortMapping.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("80:0")]
    [InlineData("65536")]
    [InlineData("-1")]
    [InlineData("http")]
    [InlineData("127.0.0.1:80:80")]
    [InlineData("80/tcp")]
    public void Bad_mappings_say_what_is_expected(string text)
    {
        var error = Assert.Throws<ArgumentException>(() => PortMapping.Parse(text));
        Assert.Contains(text.Trim(), error.Message, StringComparison.Ordinal);
    }

    private static PortForwarder Forward(AgentHarness harness, int guestPort, out ConcurrentQueue<string> log)
    {
        var lines = new ConcurrentQueue<string>();
        log = lines;
        return PortForwarder.Start(
            [new PortMapping(0, guestPort)],
            null,
            (port, ct) => harness.OpenAsync(new PortConnectRequest { Port = port }),
            Sandbox.DescribePortFailure,
            lines.Enqueue);
    }

    private static Task<Protocol.MuxStream> NeverConnect(int port, CancellationToken ct) => throw new InvalidOperationException("no connection expected");

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Sends everything, half-closes, and reads the answer to EOF.</summary>
    private static async Task<byte[]> SendAndReceiveAsync(string endpoint, byte[] payload)
    {
        using var client = new Socket(IPEndPoint.Parse(endpoint).AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPEndPoint.Parse(endpoint), Token);
        var send = Task.Run(async () =>
        {
            await client.SendAsync(payload, SocketFlags.None, Token);
            client.Shutdown(SocketShutdown.Send);
        });
        using var answer = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, Token).AsTask().WaitAsync(Timeout, Token)) > 0)
        {
            answer.Write(buffer, 0, n);
        }

        await send;
        return answer.ToArray();
    }

    private static Task WaitForAsync(Func<bool> condition) => Eventually.Until(condition, Timeout, "the condition");

    /// <summary>
    /// Reads each connection to EOF, then answers with the hex SHA-256 of what it got and closes:
    /// an answer that needs the client's half-close, as many request/response protocols do.
    /// </summary>
    private sealed class EchoDigestService : IDisposable
    {
        private readonly TcpListener _listener;
        private int _accepted;
        private long _received;
        private int _aborted;

        private EchoDigestService(TcpListener listener) => _listener = listener;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref _accepted);

        public long Received => Interlocked.Read(ref _received);

        /// <summary>Connections that ended with a reset instead of EOF.</summary>
        public int Aborted => Volatile.Read(ref _aborted);

        public static EchoDigestService Start()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start(128);
            var service = new EchoDigestService(listener);
            _ = Task.Run(service.AcceptLoopAsync);
            return service;
        }

        private async Task AcceptLoopAsync()
        {
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptSocketAsync();
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                Interlocked.Increment(ref _accepted);
                _ = Task.Run(() => ServeAsync(socket));
            }
        }

        private async Task ServeAsync(Socket socket)
        {
            using (socket)
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[64 * 1024];
                try
                {
                    int n;
                    while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                    {
                        hash.AppendData(buffer, 0, n);
                        Interlocked.Add(ref _received, n);
                    }

                    await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(Convert.ToHexString(hash.GetHashAndReset())), SocketFlags.None);
                    socket.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException)
                {
                    Interlocked.Increment(ref _aborted);
                }
            }
        }

        public void Dispose() => _listener.Stop();
    }
}
