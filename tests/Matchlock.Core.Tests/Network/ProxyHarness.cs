using Matchlock.Core.Events;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;

namespace Matchlock.Core.Tests.Network;

/// <summary>
/// An egress proxy on a 127.0.0.1 listener plus the "guest" side: clients that connect to the
/// listener and trust the sandbox CA. The test plays SO_ORIGINAL_DST by setting <see cref="Destination"/>.
/// </summary>
internal sealed class ProxyHarness : IAsyncDisposable
{
    private ProxyHarness(EgressProxy proxy, CertificateAuthority ca, IPEndPoint listener, SandboxEventLog events, List<NetworkEvent> seen)
    {
        Proxy = proxy;
        Authority = ca;
        Listener = listener;
        Events = events;
        Seen = seen;
    }

    public EgressProxy Proxy { get; }

    public CertificateAuthority Authority { get; }

    public IPEndPoint Listener { get; }

    public SandboxEventLog Events { get; }

    /// <summary>Every event so far (lock it to read).</summary>
    public List<NetworkEvent> Seen { get; }

    /// <summary>Where the "guest" meant to connect (what SO_ORIGINAL_DST would say).</summary>
    public IPEndPoint? Destination { get; set; }

    public static async Task<ProxyHarness> StartAsync(
        NetworkPolicy policy,
        LoopbackUpstream upstream,
        SandboxSecrets? secrets = null,
        IReadOnlyList<HookRule>? hooks = null,
        string? eventsFile = null,
        TimeSpan? firstByteTimeout = null,
        int maxConnections = 4096)
    {
        var ca = CertificateAuthority.Create();
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(128);
        var listener = (IPEndPoint)socket.LocalEndPoint!;
        var events = new SandboxEventLog(eventsFile);
        var seen = new List<NetworkEvent>();
        events.Subscribe(e =>
        {
            lock (seen)
            {
                seen.Add((NetworkEvent)e);
            }
        });
        ProxyHarness? self = null;
        var proxy = await EgressProxy.StartAsync(new EgressProxyOptions
        {
            Policy = policy,
            Secrets = secrets ?? SandboxSecrets.Empty,
            Hooks = hooks ?? [],
            Authority = ca,
            UpstreamCaFile = upstream.CaFile,
            Events = events,
            Listeners = [socket],
            OriginalDestination = _ => self!.Destination,
            FirstByteTimeout = firstByteTimeout ?? TimeSpan.FromSeconds(30),
            MaxConnections = maxConnections,
        });
        self = new ProxyHarness(proxy, ca, listener, events, seen);
        return self;
    }

    /// <summary>A guest HttpClient: every connection goes to the proxy listener; trusts only the sandbox CA.</summary>
    public HttpClient Guest(IPEndPoint destination, Version? version = null)
    {
        Destination = destination;
        return new HttpClient(GuestHandler())
        {
            DefaultRequestVersion = version ?? HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    public SocketsHttpHandler GuestHandler() => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await s.ConnectAsync(Listener, ct);
            return new NetworkStream(s, ownsSocket: true);
        },
        SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = TrustsSandboxCa },
    };

    public bool TrustsSandboxCa(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is not X509Certificate2 leaf)
        {
            return errors == SslPolicyErrors.None;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.Add(Authority.Certificate);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return custom.Build(leaf);
    }

    public List<NetworkEvent> Snapshot()
    {
        lock (Seen)
        {
            return [.. Seen];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Proxy.DisposeAsync();
        await Events.DisposeAsync();
        Authority.Dispose();
    }
}
