using System.Net.Security;
using Matchlock.Core.Network.Policy;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// The per-listener connection pipeline, built from Kestrel connection middleware:
/// <code>
/// [Sniff] ─ TLS ──► [Kestrel HTTPS (leaf per SNI, ALPN h2/http1.1)] ─► [Capture] ─► Kestrel HTTP
///        ├ HTTP ───────────────────────────────────────────────────────────────────► Kestrel HTTP
///        └ other ─► raw TCP relay (policy permitting)
/// </code>
/// Kestrel composes middleware once per listener in registration order, so the last one
/// (<see cref="Capture"/>) is handed the HTTP connection handler; <see cref="Sniff"/> keeps a reference
/// to it and jumps there directly for plain HTTP, skipping TLS. This keeps Kestrel's own TLS and
/// HTTP stack (DESIGN D8) while serving TLS and plain HTTP on any destination port.
/// </summary>
internal sealed class ConnectionRouter(TcpRelay relay, CertificateAuthority authority, TimeSpan sniffTimeout)
{
    private ConnectionDelegate? _http;

    /// <summary>First middleware: peek and dispatch.</summary>
    public ConnectionDelegate Sniff(ConnectionDelegate tlsThenHttp) => async connection =>
    {
        var feature = connection.Features.Get<ProxyConnectionFeature>()
            ?? throw new InvalidOperationException("connection accepted without an original destination");
        var protocol = await ProtocolSniffer.SniffAsync(connection.Transport.Input, sniffTimeout, connection.ConnectionClosed);
        switch (protocol)
        {
            case SniffedProtocol.Tls:
                feature.IsTls = true;
                await tlsThenHttp(connection);
                break;
            case SniffedProtocol.Http:
                await (_http ?? throw new InvalidOperationException("connection pipeline not built"))(connection);
                break;
            case SniffedProtocol.Other:
                await relay.RelayAsync(connection, feature);
                break;
            case SniffedProtocol.Closed:
                break;
        }
    };

    /// <summary>Last middleware: remembers the HTTP handler Kestrel appends after it.</summary>
    public ConnectionDelegate Capture(ConnectionDelegate http)
    {
        _http = http;
        return http;
    }

    /// <summary>TLS handshake callback: the leaf for the SNI (or for the destination IP when there is none).</summary>
    public ValueTask<SslServerAuthenticationOptions> SelectCertificate(TlsHandshakeCallbackContext context)
    {
        var feature = context.Connection.Features.Get<ProxyConnectionFeature>()!;
        var sni = context.ClientHelloInfo.ServerName;
        HostName host;
        if (string.IsNullOrEmpty(sni))
        {
            host = HostName.FromAddress(feature.OriginalDestination.Address);
        }
        else if (HostName.TryParse(sni, out var parsed))
        {
            feature.Sni = parsed;
            host = parsed;
        }
        else
        {
            // Finish the handshake anyway so the guest can read a 403 that says what was wrong.
            feature.InvalidSni = sni;
            host = HostName.FromAddress(feature.OriginalDestination.Address);
        }

        return ValueTask.FromResult(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = authority.GetServerContext(host),
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
        });
    }
}
