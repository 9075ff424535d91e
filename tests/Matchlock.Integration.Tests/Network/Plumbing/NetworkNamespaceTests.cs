using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Matchlock.Core.Network.Plumbing;
using Matchlock.Tests;

namespace Matchlock.Integration.Tests.Network.Plumbing;

/// <summary>
/// The per-sandbox namespace, tap and firewall on the real kernel (root, no VM). A veth "guest"
/// (<see cref="FakeGuest"/>) proves what the firewall lets through; nothing leaves the namespaces.
/// </summary>
public sealed class NetworkNamespaceTests
{
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(1);

    private static string NewId() => "test-" + Guid.NewGuid().ToString("N")[..8];

    private static void RequireRoot() => HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.NetworkTools);

    [Fact]
    public async Task Create_makes_a_namespace_with_a_tap_an_address_no_route_out_and_a_drop_all_firewall()
    {
        RequireRoot();
        var hostRulesBefore = await Sh.RunAsync("nft list ruleset");
        var hostLinksBefore = await Sh.RunAsync("ip -o link show | cut -d: -f2");
        var id = NewId();
        var ns = NetworkNamespace.NamePrefix + id;
        await using (var network = await NetworkNamespace.CreateAsync(id, new NetworkNamespaceOptions { Mtu = 1400 }, TestContext.Current.CancellationToken))
        {
            Assert.Contains(ns, await Sh.RunAsync("ip netns list"));
            var links = await Sh.RunAsync($"ip -n {ns} -d link show");
            Assert.Contains("tap0: <", links);
            Assert.Contains("mtu 1400", links);
            Assert.Contains("tun type tap", links);
            Assert.Contains("lo: <LOOPBACK,UP", links);
            Assert.Contains("inet 10.77.0.1/30", await Sh.RunAsync($"ip -n {ns} -4 addr show dev tap0"));
            Assert.Equal("", (await Sh.RunAsync($"ip -n {ns} -6 addr show")).Trim());
            Assert.Equal("1", (await Sh.RunAsync($"ip netns exec {ns} cat /proc/sys/net/ipv6/conf/tap0/disable_ipv6")).Trim());

            // Only the connected /30 ("linkdown" until QEMU attaches): no default route, nothing else.
            var routes = (await Sh.RunAsync($"ip -n {ns} -4 route show")).Trim();
            Assert.Single(routes.Split('\n'));
            Assert.StartsWith("10.77.0.0/30 dev tap0 proto kernel scope link src 10.77.0.1", routes);
            var rules = await Sh.RunAsync($"ip netns exec {ns} nft -a list ruleset");
            Assert.Contains("table inet matchlock", rules);
            Assert.Contains("policy drop", rules);
            Assert.DoesNotContain("dnat", rules);
            Assert.Equal("02:", network.GuestMac[..3]);
        }

        Assert.DoesNotContain(ns, await Sh.RunAsync("ip netns list"));
        Assert.False(File.Exists("/var/run/netns/" + ns));
        Assert.Equal(hostRulesBefore, await Sh.RunAsync("nft list ruleset"));
        Assert.Equal(hostLinksBefore, await Sh.RunAsync("ip -o link show | cut -d: -f2"));
    }

    [Fact]
    public async Task Guest_tcp_to_any_address_reaches_the_proxy_listener_with_its_original_destination()
    {
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        await using var network = await NetworkNamespace.CreateAsync(NewId(), null, ct);
        var proxy = network.OpenTcpListener();
        var dnsUdp = network.OpenUdp(53);
        var dnsTcp = network.OpenTcpListener(53);
        Assert.Equal(IPAddress.Parse("10.77.0.1"), ((IPEndPoint)proxy.LocalEndPoint!).Address);
        await network.ApplyRedirectsAsync(new NetworkRedirects(NetworkNamespace.PortOf(proxy), NetworkNamespace.PortOf(dnsUdp), NetworkNamespace.PortOf(dnsTcp)), ct);
        await using var guest = await FakeGuest.AttachAsync(network);

        // 93.184.216.34 is not on any link here: the SYN can only end at the DNAT.
        foreach (var target in new[] { new IPEndPoint(IPAddress.Parse("93.184.216.34"), 8443), new IPEndPoint(IPAddress.Parse("10.77.0.1"), 22), new IPEndPoint(IPAddress.Parse("1.2.3.4"), 80) })
        {
            using var client = NamespaceThread.Run(guest.NamespacePath, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            await client.ConnectAsync(target, ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct);
            using var accepted = await proxy.AcceptAsync(ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct);
            Assert.Equal(target, OriginalDestination.Get(accepted));
            Assert.Equal(IPAddress.Parse("10.77.0.2"), ((IPEndPoint)accepted.RemoteEndPoint!).Address);

            // Data both ways, so the reply path (un-DNAT, established) is proven too.
            await client.SendAsync("ping"u8.ToArray(), ct);
            var buffer = new byte[4];
            Assert.Equal(4, await accepted.ReceiveAsync(buffer, ct));
            await accepted.SendAsync("pong"u8.ToArray(), ct);
            Assert.Equal(4, await client.ReceiveAsync(buffer, ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct));
            Assert.Equal("pong", Encoding.ASCII.GetString(buffer));
        }

        // TCP 53 goes to the DNS TCP listener instead.
        using (var client = NamespaceThread.Run(guest.NamespacePath, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)))
        {
            await client.ConnectAsync(new IPEndPoint(IPAddress.Parse("8.8.4.4"), 53), ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct);
            using var accepted = await dnsTcp.AcceptAsync(ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct);
            Assert.Equal(new IPEndPoint(IPAddress.Parse("8.8.4.4"), 53), OriginalDestination.Get(accepted));
        }
    }

    [Fact]
    public async Task Guest_dns_over_udp_reaches_the_dns_socket_and_other_udp_icmp_get_nothing()
    {
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        await using var network = await NetworkNamespace.CreateAsync(NewId(), null, ct);
        var proxy = network.OpenTcpListener();
        var dnsUdp = network.OpenUdp();
        var dnsTcp = network.OpenTcpListener();

        // A UDP socket on the gateway that no rule redirects to: anything arriving here leaked.
        var stray = network.OpenUdp();
        await network.ApplyRedirectsAsync(new NetworkRedirects(NetworkNamespace.PortOf(proxy), NetworkNamespace.PortOf(dnsUdp), NetworkNamespace.PortOf(dnsTcp)), ct);
        await using var guest = await FakeGuest.AttachAsync(network);

        using var client = NamespaceThread.Run(guest.NamespacePath, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        await client.SendToAsync("query"u8.ToArray(), new IPEndPoint(IPAddress.Parse("9.9.9.9"), 53), ct);
        var buffer = new byte[64];
        var received = await dnsUdp.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct);
        Assert.Equal("query", Encoding.ASCII.GetString(buffer, 0, received.ReceivedBytes));
        Assert.Equal(IPAddress.Parse("10.77.0.2"), ((IPEndPoint)received.RemoteEndPoint).Address);

        // The answer comes back from the address the guest asked (conntrack undoes the DNAT).
        await dnsUdp.SendToAsync("answer"u8.ToArray(), received.RemoteEndPoint, ct);
        var reply = await client.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), ct);
        Assert.Equal("answer", Encoding.ASCII.GetString(buffer, 0, reply.ReceivedBytes));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("9.9.9.9"), 53), reply.RemoteEndPoint);

        // Other UDP, even straight to a bound socket on the gateway, is dropped.
        await client.SendToAsync("leak"u8.ToArray(), new IPEndPoint(IPAddress.Parse("10.77.0.1"), NetworkNamespace.PortOf(stray)), ct);
        await client.SendToAsync("leak"u8.ToArray(), new IPEndPoint(IPAddress.Parse("9.9.9.9"), 123), ct);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(Quick);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stray.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), wait.Token));

        // ICMP echo to the gateway or beyond: no answer (Ping.Send makes its raw socket on the calling thread).
        foreach (var target in new[] { "10.77.0.1", "93.184.216.34" })
        {
            var status = NamespaceThread.Run(guest.NamespacePath, () =>
            {
                using var ping = new Ping();
                return ping.Send(IPAddress.Parse(target), 1000).Status;
            });
            Assert.NotEqual(IPStatus.Success, status);
        }

        // IPv6 does not exist on the sandbox side at all.
        Assert.Equal("", (await Sh.RunAsync($"ip -n {network.NamespaceName} -6 addr show")).Trim());
        var counters = await Sh.RunAsync($"ip netns exec {network.NamespaceName} nft list chain inet matchlock input");
        Assert.Contains("policy drop", counters);
    }

    [Fact]
    public async Task Sockets_live_in_the_sandbox_namespace_not_the_host()
    {
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        await using var network = await NetworkNamespace.CreateAsync(NewId(), null, ct);
        var listener = network.OpenTcpListener();
        var port = NetworkNamespace.PortOf(listener);
        Assert.Contains($"10.77.0.1:{port}", await Sh.RunAsync($"ip netns exec {network.NamespaceName} ss -Hltn"));
        Assert.DoesNotContain($"10.77.0.1:{port}", await Sh.RunAsync("ss -Hltn"));
    }

    [Fact]
    public async Task Dispose_removes_everything_even_with_sockets_open()
    {
        RequireRoot();
        var id = NewId();
        var network = await NetworkNamespace.CreateAsync(id, null, TestContext.Current.CancellationToken);
        var listener = network.OpenTcpListener();
        await network.DisposeAsync();
        Assert.False(File.Exists("/var/run/netns/matchlock-" + id));
        Assert.Throws<ObjectDisposedException>(() => listener.Accept());
        Assert.Throws<ObjectDisposedException>(() => network.OpenUdp());
        await network.DisposeAsync();
    }

    [Fact]
    public async Task A_name_that_exists_is_refused_and_left_alone()
    {
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        var id = NewId();
        await using var first = await NetworkNamespace.CreateAsync(id, null, ct);
        await Assert.ThrowsAsync<NetworkNamespaceException>(() => NetworkNamespace.CreateAsync(id, null, ct));
        Assert.True(File.Exists(first.NamespacePath));
    }

    [Fact]
    public async Task A_failed_create_leaves_nothing_behind()
    {
        RequireRoot();
        var id = NewId();

        // A tap name the kernel rejects (too long for IFNAMSIZ is caught by Validate, so use a
        // name that "ip tuntap" refuses: one that already exists in the namespace, "lo").
        var ex = await Assert.ThrowsAsync<NetworkNamespaceException>(() =>
            NetworkNamespace.CreateAsync(id, new NetworkNamespaceOptions { TapName = "lo" }, TestContext.Current.CancellationToken));
        Assert.Contains("-batch", ex.Message);
        Assert.False(File.Exists("/var/run/netns/matchlock-" + id));
    }

    [Fact]
    public async Task Sweep_removes_namespaces_of_dead_vms_only()
    {
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        var deadId = NewId();
        var liveId = NewId();
        var dead = await NetworkNamespace.CreateAsync(deadId, null, ct);
        await using var live = await NetworkNamespace.CreateAsync(liveId, null, ct);

        var removed = await NetworkNamespace.SweepAsync(id => id != deadId, ct);

        Assert.Equal([deadId], removed);
        Assert.False(File.Exists(dead.NamespacePath));
        Assert.True(File.Exists(live.NamespacePath));
        await dead.DisposeAsync(); // nothing left to do, must not throw
    }

    [Fact]
    public async Task Sweep_leaves_a_namespace_with_a_process_inside()
    {
        RequireRoot();
        var ct = TestContext.Current.CancellationToken;
        var id = NewId();
        await using var network = await NetworkNamespace.CreateAsync(id, null, ct);
        using var sleeper = System.Diagnostics.Process.Start("ip", ["netns", "exec", network.NamespaceName, "sleep", "30"]);
        try
        {
            await Eventually.Until(async () => (await Sh.RunAsync($"ip netns pids {network.NamespaceName}")).Trim().Length > 0,
                TimeSpan.FromSeconds(10), "sleep to run inside the namespace");
            Assert.DoesNotContain(id, await NetworkNamespace.SweepAsync(other => other != id, ct));
            Assert.True(File.Exists(network.NamespacePath));
        }
        finally
        {
            sleeper.Kill();
            await sleeper.WaitForExitAsync(ct);
        }
    }
}
