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
///        └ raw / silent ─► raw TCP relay if the policy allows raw TCP there, else refused
/// </code>
/// Kestrel composes middleware once per listener in registration order, so the last one
/// (<see cref="Capture"/>) is handed the HTTP connection handler; <see cref="Sniff"/> keeps a reference
/// to it and jumps there directly for plain HTTP, skipping TLS. This keeps Kestrel's own TLS and
/// HTTP stack (docs/ARCHITECTURE.md D8) while serving TLS and plain HTTP on any destination port.
/// </summary>
/// <remarks>
/// Nothing here falls open (docs/NETWORK.md "Classification"). TLS and HTTP are always intercepted,
/// whatever rule exists for the destination. Bytes that are neither, and silence, become a raw relay
/// only where <see cref="NetworkPolicy.CheckRawTcp"/> allows raw TCP (an explicit rule under
/// interception): there a silent client is relayed after <paramref name="sniffTimeout"/>, for
/// protocols where the server speaks first. Everywhere else a silent client is waited for up to
/// <paramref name="firstByteTimeout"/> and then closed, and unrecognised bytes get a 400 and are closed:
/// no timeout ever turns a connection into a tunnel.
/// </remarks>
internal sealed class ConnectionRouter(
    NetworkPolicy policy, TcpRelay relay, EventPublisher events, CertificateAuthority authority, TimeSpan sniffTimeout, TimeSpan firstByteTimeout)
{
    private ConnectionDelegate? _http;

    /// <summary>First middleware: peek and dispatch.</summary>
    public ConnectionDelegate Sniff(ConnectionDelegate tlsThenHttp) => async connection =>
    {
        var feature = connection.Features.Get<ProxyConnectionFeature>()
            ?? throw new InvalidOperationException("connection accepted without an original destination");
        var input = connection.Transport.Input;

        // Clients that speak at once (nearly all) are classified without consulting the policy.
        var protocol = await ProtocolSniffer.SniffAsync(input, sniffTimeout, connection.ConnectionClosed);
        if (await DispatchAsync(protocol, connection, feature, tlsThenHttp))
        {
            return;
        }

        var destination = feature.OriginalDestination;
        var raw = policy.CheckRawTcp(destination.Address, destination.Port, out var names);
        if (raw.Allowed)
        {
            // Raw bytes, or a silent client where the server may speak first: relay (checked again there).
            await relay.RelayAsync(connection, feature);
            return;
        }

        if (protocol == SniffedProtocol.Silent)
        {
            // Keep waiting for a request line or a ClientHello; silence never becomes a tunnel.
            var rest = firstByteTimeout > sniffTimeout ? firstByteTimeout - sniffTimeout : TimeSpan.Zero;
            protocol = await ProtocolSniffer.SniffAsync(input, rest, connection.ConnectionClosed);
            if (await DispatchAsync(protocol, connection, feature, tlsThenHttp))
            {
                return;
            }
        }

        var host = names ?? HostName.FromAddress(destination.Address).Value;
        if (protocol == SniffedProtocol.Silent)
        {
            events.Publish(NetworkEventKind.Denied, host, destination.Port, protocol: "tcp",
                reason: $"the connection sent no HTTP request or TLS ClientHello within {firstByteTimeout.TotalSeconds:0.#} s and raw TCP is not allowed there; closed");
            return;
        }

        events.Publish(NetworkEventKind.Denied, host, destination.Port, protocol: "tcp", reason: raw.Reason);
        await RefuseAsync(connection, raw.Reason);
    };

    /// <summary>Hands TLS and HTTP to Kestrel; true when the connection was dealt with (or closed).</summary>
    private async Task<bool> DispatchAsync(SniffedProtocol protocol, ConnectionContext connection, ProxyConnectionFeature feature, ConnectionDelegate tlsThenHttp)
    {
        switch (protocol)
        {
            case SniffedProtocol.Tls:
                feature.IsTls = true;
                await tlsThenHttp(connection);
                return true;
            case SniffedProtocol.Http:
                await (_http ?? throw new InvalidOperationException("connection pipeline not built"))(connection);
                return true;
            case SniffedProtocol.Closed:
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Answers a refused raw connection with a 400 that says why (a client that spoke almost-HTTP reads
    /// it; any other client just sees the connection close), then ends it. Nothing went upstream.
    /// </summary>
    private static async Task RefuseAsync(ConnectionContext connection, string reason)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(
            $"matchlock: the connection was refused: it is neither a well-formed HTTP/1.x request nor TLS, and {reason}\n");
        var head = System.Text.Encoding.ASCII.GetBytes(
            $"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        try
        {
            await connection.Transport.Output.WriteAsync(head);
            await connection.Transport.Output.WriteAsync(body);
        }
        catch (Exception e) when (e is IOException or ConnectionResetException or InvalidOperationException)
        {
            // The guest is already gone; the refusal stands either way.
        }
    }

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
