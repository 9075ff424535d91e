using System.Net;
using System.Net.Sockets;
using Makaretu.Dns;
using Matchlock.Core.Network.Dns;

namespace Matchlock.Core.Tests.Network.Dns;

/// <summary>
/// The responder over real loopback UDP and TCP sockets, with a fake resolver: what the guest gets
/// for each kind of query, and what never reaches a resolver.
/// </summary>
public sealed class DnsResponderTests
{
    private static string[] Addresses(Message reply) =>
        reply.Answers.OfType<ARecord>().Select(a => a.Address.ToString()).ToArray();

    [Fact]
    public async Task An_allowed_name_is_answered_with_the_resolvers_addresses_under_the_queried_name()
    {
        await using var server = DnsTestServer.Start();

        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A, id: 777));

        Assert.NotNull(reply);
        Assert.Equal(777, reply.Id);
        Assert.True(reply.QR);
        Assert.True(reply.RA);
        Assert.Equal(MessageStatus.NoError, reply.Status);
        Assert.Equal(["192.0.2.10", "192.0.2.11"], Addresses(reply));
        Assert.All(reply.Answers, a =>
        {
            Assert.Equal(DnsType.A, a.Type);
            Assert.Equal("api.example.com", a.Name!.ToString());
            Assert.Equal(TimeSpan.FromSeconds(30), a.TTL);
        });
        Assert.Equal(["api.example.com"], server.Resolver.Asked);
    }

    [Fact]
    public async Task A_name_the_policy_refuses_gets_nxdomain_and_never_reaches_the_resolver()
    {
        await using var server = DnsTestServer.Start();

        var a = await server.AskUdpAsync(DnsTestServer.Query("secret-data.attacker.com", DnsType.A));
        var aaaa = await server.AskUdpAsync(DnsTestServer.Query("secret-data.attacker.com", DnsType.AAAA));

        Assert.Equal(MessageStatus.NameError, a!.Status);
        Assert.Equal(MessageStatus.NameError, aaaa!.Status);
        Assert.Empty(a.Answers);
        Assert.Empty(server.Resolver.Asked);
        Assert.Contains(server.Events, e => e is { Name: "secret-data.attacker.com", Type: "A", Decision: DnsDecision.Denied });
    }

    [Theory]
    [InlineData("1.2.3.4")]
    [InlineData("bad name.example.com")]
    [InlineData("caf\u00e9.example.com")]
    public async Task A_name_that_is_no_host_name_gets_nxdomain_without_asking_the_policy(string name)
    {
        var asked = new List<string>();
        await using var server = DnsTestServer.Start(configure: o => o with { MayResolve = n => { asked.Add(n); return true; } });

        var reply = await server.AskUdpAsync(DnsTestServer.Query(name, DnsType.A));

        Assert.Equal(MessageStatus.NameError, reply!.Status);
        Assert.Empty(asked);
        Assert.Empty(server.Resolver.Asked);
    }

    [Fact]
    public async Task Aaaa_for_an_allowed_name_is_answered_empty_without_resolving()
    {
        await using var server = DnsTestServer.Start();

        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.AAAA));

        Assert.Equal(MessageStatus.NoError, reply!.Status);
        Assert.Empty(reply.Answers);
        Assert.Empty(server.Resolver.Asked);
    }

    [Theory]
    [InlineData(DnsType.TXT)]
    [InlineData(DnsType.MX)]
    [InlineData(DnsType.SRV)]
    [InlineData(DnsType.ANY)]
    [InlineData(DnsType.PTR)]
    [InlineData(DnsType.CNAME)]
    public async Task Other_query_types_are_refused_and_never_forwarded_even_for_allowed_names(DnsType type)
    {
        var policyAsked = 0;
        await using var server = DnsTestServer.Start(configure: o => o with { MayResolve = _ => Interlocked.Increment(ref policyAsked) > 0 });

        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", type));

        Assert.Equal(MessageStatus.Refused, reply!.Status);
        Assert.Empty(reply.Answers);
        Assert.Empty(server.Resolver.Asked);
        Assert.Equal(0, policyAsked);
    }

    [Fact]
    public async Task An_add_host_name_is_answered_from_the_static_table_without_policy_or_resolver()
    {
        var pins = new List<(string, IReadOnlyList<IPAddress>)>();
        await using var server = DnsTestServer.Start(configure: o => o with
        {
            MayResolve = _ => false,
            StaticHosts = name => name == "db.internal" ? [IPAddress.Parse("10.1.2.3"), IPAddress.Parse("fd00::1")] : null,
            OnAnswered = (name, addresses) => pins.Add((name, addresses)),
        });

        var a = await server.AskUdpAsync(DnsTestServer.Query("DB.internal", DnsType.A));
        var aaaa = await server.AskUdpAsync(DnsTestServer.Query("db.internal", DnsType.AAAA));

        Assert.Equal(["10.1.2.3"], Addresses(a!));
        Assert.Equal(MessageStatus.NoError, aaaa!.Status);
        Assert.Empty(aaaa.Answers);
        Assert.Empty(server.Resolver.Asked);
        var pin = Assert.Single(pins);
        Assert.Equal("db.internal", pin.Item1);
        Assert.Equal([IPAddress.Parse("10.1.2.3")], pin.Item2);
    }

    [Fact]
    public async Task The_answer_is_recorded_through_OnAnswered_before_the_reply_is_sent()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pinned = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = DnsTestServer.Start(configure: o => o with
        {
            OnAnswered = (name, _) =>
            {
                pinned.TrySetResult(name);
                gate.Task.Wait(TestContext.Current.CancellationToken);
            },
        });
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await client.ConnectAsync(server.UdpEndPoint, TestContext.Current.CancellationToken);
        await client.SendAsync(DnsTestServer.Query("api.example.com", DnsType.A).ToByteArray(), SocketFlags.None, TestContext.Current.CancellationToken);

        Assert.Equal("api.example.com", await pinned.Task.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        Assert.Null(await DnsTestServer.ReceiveUdpAsync(client, TimeSpan.FromMilliseconds(300)));
        gate.SetResult();
        var reply = await DnsTestServer.ReceiveUdpAsync(client, TimeSpan.FromSeconds(5));
        Assert.Equal(["192.0.2.10", "192.0.2.11"], Addresses(reply!));
    }

    [Fact]
    public async Task A_failing_OnAnswered_gives_servfail_rather_than_an_unpinned_address()
    {
        await using var server = DnsTestServer.Start(configure: o => o with { OnAnswered = (_, _) => throw new InvalidOperationException("pin table full") });

        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A));

        Assert.Equal(MessageStatus.ServerFailure, reply!.Status);
        Assert.Empty(reply.Answers);
    }

    [Fact]
    public async Task The_query_names_case_is_echoed_as_sent_and_the_policy_sees_it_canonical()
    {
        var asked = new List<string>();
        await using var server = DnsTestServer.Start(configure: o => o with { MayResolve = n => { asked.Add(n); return true; } });

        var reply = await server.AskUdpAsync(DnsTestServer.Query("aPi.ExAmPlE.cOm", DnsType.A));

        Assert.Equal("aPi.ExAmPlE.cOm", reply!.Questions.Single().Name!.ToString());
        Assert.All(reply.Answers, a => Assert.Equal("aPi.ExAmPlE.cOm", a.Name!.ToString()));
        Assert.Equal(["api.example.com"], asked);
        Assert.Equal(["api.example.com"], server.Resolver.Asked);
    }

    [Theory]
    [InlineData(new byte[] { 0x12 })]
    [InlineData(new byte[] { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, (byte)'a' })]
    [InlineData(new byte[] { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x20, 0x00, 0x01, 0x00, 0x01 })]
    public async Task A_malformed_packet_is_dropped_and_the_next_query_is_still_answered(byte[] garbage)
    {
        await using var server = DnsTestServer.Start();

        Assert.Null(await server.AskUdpAsync(garbage, TimeSpan.FromMilliseconds(300)));
        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A));

        Assert.Equal(MessageStatus.NoError, reply!.Status);
        Assert.Contains(server.Events, e => e.Decision == DnsDecision.Malformed);
    }

    [Fact]
    public async Task An_oversized_datagram_of_tiny_labels_never_reaches_the_parser()
    {
        // 30 000 one-octet labels would overflow the library's recursive name reader and end the
        // process; the responder drops anything over 512 octets before parsing.
        await using var server = DnsTestServer.Start();
        var packet = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
        for (var i = 0; i < 30_000; i++)
        {
            packet.AddRange([1, (byte)'a']);
        }

        packet.AddRange([0, 0, 1, 0, 1]);

        Assert.Null(await server.AskUdpAsync(packet.ToArray(), TimeSpan.FromMilliseconds(300)));
        Assert.Equal(MessageStatus.NoError, (await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A)))!.Status);
    }

    [Fact]
    public async Task A_response_packet_is_never_answered()
    {
        await using var server = DnsTestServer.Start();
        var response = DnsTestServer.Query("api.example.com", DnsType.A);
        response.QR = true;

        Assert.Null(await server.AskUdpAsync(response, TimeSpan.FromMilliseconds(300)));
        Assert.Empty(server.Resolver.Asked);
    }

    [Fact]
    public async Task Tcp_queries_are_length_prefixed_and_answered_in_order_on_one_connection()
    {
        await using var server = DnsTestServer.Start();
        using var client = await server.ConnectTcpAsync();

        await DnsTestServer.SendTcpAsync(client, DnsTestServer.Query("api.example.com", DnsType.A, id: 1).ToByteArray());
        await DnsTestServer.SendTcpAsync(client, DnsTestServer.Query("evil.attacker.com", DnsType.A, id: 2).ToByteArray());
        var first = await DnsTestServer.ReceiveTcpAsync(client);
        var second = await DnsTestServer.ReceiveTcpAsync(client);
        await DnsTestServer.SendTcpAsync(client, [0x00, 0x01, 0x02]);
        await DnsTestServer.SendTcpAsync(client, DnsTestServer.Query("api.example.com", DnsType.TXT, id: 3).ToByteArray());
        var third = await DnsTestServer.ReceiveTcpAsync(client);

        Assert.Equal((ushort)1, first!.Id);
        Assert.Equal(["192.0.2.10", "192.0.2.11"], Addresses(first));
        Assert.Equal((ushort)2, second!.Id);
        Assert.Equal(MessageStatus.NameError, second.Status);
        Assert.Equal((ushort)3, third!.Id);
        Assert.Equal(MessageStatus.Refused, third.Status);
    }

    [Fact]
    public async Task A_tcp_message_longer_than_a_query_is_not_read_and_the_connection_closes()
    {
        await using var server = DnsTestServer.Start();
        using var client = await server.ConnectTcpAsync();

        await client.SendAsync(new byte[] { 0xFF, 0xFF, 1, 2, 3 }, SocketFlags.None, TestContext.Current.CancellationToken);

        Assert.Null(await DnsTestServer.ReceiveTcpAsync(client));
        using var next = await server.ConnectTcpAsync();
        await DnsTestServer.SendTcpAsync(next, DnsTestServer.Query("api.example.com", DnsType.A).ToByteArray());
        Assert.Equal(MessageStatus.NoError, (await DnsTestServer.ReceiveTcpAsync(next))!.Status);
    }

    [Fact]
    public async Task A_resolver_that_does_not_answer_in_time_gives_servfail()
    {
        var resolver = new FakeResolver { Delay = Timeout.InfiniteTimeSpan };
        await using var server = DnsTestServer.Start(resolver, o => o with { ResolveTimeout = TimeSpan.FromMilliseconds(200) });

        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A));

        Assert.Equal(MessageStatus.ServerFailure, reply!.Status);
        Assert.Empty(reply.Answers);
        Assert.Contains(server.Events, e => e is { Name: "api.example.com", Decision: DnsDecision.Failed });
    }

    [Fact]
    public async Task A_resolver_that_throws_gives_servfail()
    {
        await using var server = DnsTestServer.Start(configure: o => o with { Resolve = (_, _, _) => throw new SocketException((int)SocketError.TryAgain) });

        var reply = await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A));

        Assert.Equal(MessageStatus.ServerFailure, reply!.Status);
    }

    [Fact]
    public async Task Many_concurrent_queries_are_all_answered_within_the_concurrency_bound()
    {
        var resolver = new FakeResolver { Delay = TimeSpan.FromMilliseconds(20) };
        await using var server = DnsTestServer.Start(resolver, o => o with { MaxConcurrentQueries = 8 });

        var udp = Enumerable.Range(0, 150).Select(async i =>
        {
            var reply = await server.AskUdpAsync(DnsTestServer.Query($"host{i}.example.com", DnsType.A, id: (ushort)i), TimeSpan.FromSeconds(10));
            return (i, reply);
        });
        var tcp = Enumerable.Range(150, 50).Select(async i =>
        {
            using var client = await server.ConnectTcpAsync();
            await DnsTestServer.SendTcpAsync(client, DnsTestServer.Query($"host{i}.example.com", DnsType.A, id: (ushort)i).ToByteArray());
            return (i, reply: await DnsTestServer.ReceiveTcpAsync(client));
        });
        var results = await Task.WhenAll(udp.Concat(tcp));

        Assert.All(results, r =>
        {
            Assert.NotNull(r.reply);
            Assert.Equal((ushort)r.i, r.reply.Id);
            Assert.Equal($"host{r.i}.example.com", r.reply.Questions.Single().Name!.ToString());
            Assert.Equal(["192.0.2.99"], Addresses(r.reply));
        });
        Assert.Equal(200, server.Resolver.Asked.Count);
        Assert.InRange(resolver.MaxInFlight, 1, 8);
    }

    [Fact]
    public async Task Disposal_stops_serving_and_closes_the_sockets()
    {
        var server = DnsTestServer.Start();
        Assert.NotNull(await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A)));

        await server.DisposeAsync();

        Assert.Null(await server.AskUdpAsync(DnsTestServer.Query("api.example.com", DnsType.A), TimeSpan.FromMilliseconds(200)));
        await Assert.ThrowsAnyAsync<SocketException>(async () => (await server.ConnectTcpAsync()).Dispose());
    }
}
