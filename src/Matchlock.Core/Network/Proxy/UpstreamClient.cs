using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Matchlock.Core.Network.Policy;

namespace Matchlock.Core.Network.Proxy;

/// <summary>The address a forwarded request must be sent to, decided by the policy before forwarding.</summary>
internal sealed record UpstreamTarget(HostName Host, IPAddress Address);

/// <summary>
/// The one <see cref="HttpMessageInvoker"/> a proxy forwards through. Its <c>ConnectCallback</c> never
/// resolves names: it dials the address the request handler chose (the guest's original destination,
/// already checked to be pinned or add-host mapped for the name) and re-checks the policy on that
/// exact address, so no path reaches a socket without a decision on what it connects to.
/// </summary>
/// <remarks>
/// Connections are pooled per scheme/host/port. A pooled connection was checked when it was dialled;
/// pins only grow, so what it connects to stays legal for that name, and every request is checked
/// against the allow-list before it may use the pool.
/// </remarks>
internal sealed class UpstreamClient : IDisposable
{
    public static readonly HttpRequestOptionsKey<UpstreamTarget> TargetKey = new("matchlock.upstream-target");

    private readonly NetworkPolicy _policy;
    private readonly X509Certificate2Collection _extraRoots;

    public UpstreamClient(NetworkPolicy policy, string? extraCaFile)
    {
        _policy = policy;
        _extraRoots = [];
        if (extraCaFile is not null)
        {
            try
            {
                _extraRoots.ImportFromPemFile(extraCaFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                throw new InvalidOperationException($"cannot read the upstream CA file {extraCaFile}: {e.Message}", e);
            }

            if (_extraRoots.Count == 0)
            {
                throw new InvalidOperationException($"the upstream CA file {extraCaFile} contains no PEM certificates");
            }
        }

        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            // The guest's traffic is not ours to annotate: no traceparent headers added.
            ActivityHeadersPropagator = null,
            ConnectTimeout = TimeSpan.FromSeconds(15),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            ConnectCallback = ConnectAsync,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = ValidateUpstreamCertificate },
        };
        Invoker = new HttpMessageInvoker(handler, disposeHandler: true);
    }

    public HttpMessageInvoker Invoker { get; }

    public void Dispose() => Invoker.Dispose();

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        if (!context.InitialRequestMessage.Options.TryGetValue(TargetKey, out var target))
        {
            throw new HttpRequestException("refused: the request has no policy decision for its destination");
        }

        if (!HostName.TryParse(context.DnsEndPoint.Host, out var host) || host != target.Host)
        {
            throw new HttpRequestException($"refused: connection for {context.DnsEndPoint.Host} does not match the decided host {target.Host}");
        }

        var decision = _policy.CheckDestination(host, target.Address);
        if (!decision.Allowed)
        {
            throw new HttpRequestException($"refused: {decision.Reason}");
        }

        var socket = new Socket(_policy.UpstreamAddress(target.Address).AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(_policy.UpstreamAddress(target.Address), context.DnsEndPoint.Port), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>System trust first; on a chain error only, retry with the extra roots. Name mismatches always fail.</summary>
    private bool ValidateUpstreamCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || _extraRoots.Count == 0 || certificate is not X509Certificate2 leaf)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return custom.Build(leaf);
    }
}
