using Matchlock.Core.Events;
using System.Net;
using Matchlock.Core.Network.Dns;
using Matchlock.Core.Network.Plumbing;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Core.Network;

/// <summary>
/// One sandbox's sealed network, assembled (docs/ARCHITECTURE.md D7–D8): the network namespace with the tap and
/// its nftables table, the DNS responder and the egress proxy listening inside it, the policy they
/// share, the sandbox CA and secrets, and the event log (<c>events.jsonl</c> in the VM directory).
/// </summary>
/// <remarks>
/// Order matters. The namespace's firewall drops all guest traffic until the redirects are applied,
/// and they are applied only once both servers listen, so a guest never meets a half-built network.
/// The DNS responder pins every answer in the policy before replying; the proxy only connects to
/// pinned (or add-host) addresses, so a name can never be re-resolved somewhere else. Secret values
/// live only in this object (the proxy's substitution table); the guest gets placeholders.
/// </remarks>
public sealed class SealedNetwork : IAsyncDisposable
{
    /// <summary>Where the guest finds our CA (docs/COMPATIBILITY.md "Guest trust").</summary>
    public const string GuestCaPath = "/etc/ssl/certs/matchlock-ca.crt";

    private static readonly TimeSpan UpstreamDnsTimeout = TimeSpan.FromSeconds(5);

    private readonly NetworkNamespace _network;
    private readonly DnsResponder _dns;
    private readonly EgressProxy _proxy;
    private readonly CertificateAuthority _authority;
    private readonly SandboxEventLog _events;

    private SealedNetwork(
        NetworkNamespace network, DnsResponder dns, EgressProxy proxy, CertificateAuthority authority, SandboxEventLog events, NetworkPolicy policy, SandboxSecrets secrets)
    {
        _network = network;
        _dns = dns;
        _proxy = proxy;
        _authority = authority;
        _events = events;
        Policy = policy;
        Secrets = secrets;
    }

    /// <summary>The live policy: <see cref="NetworkPolicy.Allow"/> / <see cref="NetworkPolicy.Disallow"/> change it at runtime.</summary>
    public NetworkPolicy Policy { get; }

    public SandboxSecrets Secrets { get; }

    /// <summary>The sandbox's event log, which gets every decision of the proxy and the DNS responder (the sandbox owns it).</summary>
    public SandboxEventLog Events => _events;

    internal NetworkNamespace Plumbing => _network;

    /// <summary>The sandbox CA certificate, PEM, for the guest's trust stores.</summary>
    public string CaCertificatePem => _authority.CertificatePem;

    /// <summary>
    /// Variables every command in the guest gets: each secret's placeholder under its name, and
    /// our CA for tools that read a bundle from the environment (Python requests, curl, Node).
    /// Every TLS connection the guest makes ends at our proxy (with or without an allow-list), so
    /// our CA is the only one it needs; these variables may replace the default store.
    /// </summary>
    public IReadOnlyList<string> GuestEnvironment =>
    [
        .. Secrets.GuestEnvironment.Select(kv => $"{kv.Key}={kv.Value}"),
        $"SSL_CERT_FILE={GuestCaPath}",
        $"REQUESTS_CA_BUNDLE={GuestCaPath}",
        $"CURL_CA_BUNDLE={GuestCaPath}",
        $"NODE_EXTRA_CA_CERTS={GuestCaPath}",
    ];

    /// <summary>
    /// Builds the network for VM <paramref name="vmId"/>. Bad flags (a secret without a value, a
    /// bad host pattern) fail before anything is created; a failure later undoes everything.
    /// </summary>
    public static async Task<SealedNetwork> CreateAsync(string vmId, SandboxNetworkSpec spec, SandboxEventLog events, CancellationToken cancellationToken, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var clock = time ?? TimeProvider.System;
        var secretSpecs = spec.Secrets.Select(s => SecretSpec.Parse(s)).ToList();
        var addHosts = spec.AddHosts.Select(kv => KeyValuePair.Create(HostName.Parse(kv.Key), kv.Value)).ToList();
        var tcpRules = TcpRule.ParseList(spec.AllowTcp);
        var policy = NetworkPolicy.FromFlags(spec.AllowHosts, secretSpecs, hasHooks: spec.Hooks.Count > 0, spec.Intercept, addHosts, spec.AllowPrivate, tcpRules);
        var secrets = SandboxSecrets.Create(secretSpecs, spec.SecretPlaceholders);
        var resolve = spec.DnsServers.Count > 0
            ? DnsResolvers.Upstream([.. spec.DnsServers.Select(a => new IPEndPoint(a, 53))], UpstreamDnsTimeout)
            : DnsResolvers.Host;

        var authority = CertificateAuthority.Create(time: clock);
        NetworkNamespace? network = null;
        DnsResponder? dns = null;
        EgressProxy? proxy = null;
        try
        {
            network = await NetworkNamespace.CreateAsync(vmId, new NetworkNamespaceOptions { Mtu = spec.Mtu }, cancellationToken);
            var proxyListener = network.OpenTcpListener();
            var dnsUdp = network.OpenUdp(53);
            var dnsTcp = network.OpenTcpListener(53);
            dns = DnsResponder.Start(new DnsResponderOptions
            {
                Udp = dnsUdp,
                Tcp = dnsTcp,
                MayResolve = name => HostName.TryParse(name, out var host) && policy.MayResolve(host),
                StaticHosts = name => HostName.TryParse(name, out var host) && policy.StaticAddresses(host) is { Count: > 0 } known ? [.. known] : null,
                Resolve = resolve,
                OnAnswered = (name, addresses) => policy.Pin(HostName.Parse(name), addresses),
                Events = e => PublishDns(events, e, clock),
                TimeProvider = clock,
            });
            proxy = await EgressProxy.StartAsync(
                new EgressProxyOptions
                {
                    Policy = policy,
                    Secrets = secrets,
                    Hooks = spec.Hooks,
                    Authority = authority,
                    UpstreamCaFile = spec.UpstreamCaFile,
                    Events = events,
                    Listeners = [proxyListener],
                    OriginalDestination = OriginalDestination.Get,
                    FirstByteTimeout = spec.FirstByteTimeout,
                    Time = clock,
                },
                cancellationToken);
            await network.ApplyRedirectsAsync(new NetworkRedirects(NetworkNamespace.PortOf(proxyListener), 53, 53), cancellationToken);
            return new SealedNetwork(network, dns, proxy, authority, events, policy, secrets);
        }
        catch
        {
            await DisposeAllAsync(proxy, dns, network, authority);
            throw;
        }
    }

    public ValueTask DisposeAsync() => DisposeAllAsync(_proxy, _dns, _network, _authority);

    private static async ValueTask DisposeAllAsync(
        EgressProxy? proxy, DnsResponder? dns, NetworkNamespace? network, CertificateAuthority authority)
    {
        // Servers first (they own sockets inside the namespace), then the namespace itself.
        if (proxy is not null)
        {
            await proxy.DisposeAsync();
        }

        if (dns is not null)
        {
            await dns.DisposeAsync();
        }

        if (network is not null)
        {
            await network.DisposeAsync();
        }

        authority.Dispose();
    }

    /// <summary>DNS refusals and failures become events like the proxy's (answers are not: the proxy logs the use).</summary>
    private static void PublishDns(SandboxEventLog events, DnsQueryEvent e, TimeProvider time)
    {
        if (e.Decision is not (DnsDecision.Denied or DnsDecision.Failed))
        {
            return;
        }

        events.Publish(new NetworkEvent
        {
            Time = time.GetUtcNow(),
            Kind = e.Decision == DnsDecision.Denied ? NetworkEventKind.Denied : NetworkEventKind.Error,
            Host = e.Name,
            Protocol = "dns",
            Reason = $"{e.Type} query: {e.Reason}",
        });
    }
}
