using Matchlock.Core.Events;
using System.Net;
using System.Net.Sockets;
using Matchlock.Core.Network.Policy;

namespace Matchlock.Core.Network.Proxy;

/// <summary>Everything one sandbox's egress proxy needs. Immutable; the proxy never changes it.</summary>
internal sealed record EgressProxyOptions
{
    /// <summary>The sandbox's policy (shared with the DNS responder, changed at runtime by allow-list commands).</summary>
    public required NetworkPolicy Policy { get; init; }

    /// <summary>The sandbox's secrets and placeholders.</summary>
    public SandboxSecrets Secrets { get; init; } = SandboxSecrets.Empty;

    /// <summary>Hook rules, evaluated in order per phase.</summary>
    public IReadOnlyList<HookRule> Hooks { get; init; } = [];

    /// <summary>The sandbox CA that mints the leaves the guest sees. Owned by the caller.</summary>
    public required CertificateAuthority Authority { get; init; }

    /// <summary>
    /// A PEM file of extra roots trusted for upstream TLS in addition to the host's trust store
    /// (<c>--upstream-ca</c>): corporate CAs, or a test CA for loopback upstreams.
    /// </summary>
    public string? UpstreamCaFile { get; init; }

    /// <summary>Where decisions are recorded; null for none. Owned by the caller.</summary>
    public SandboxEventLog? Events { get; init; }

    /// <summary>
    /// Bound, listening sockets (created in the sandbox's netns). The proxy takes ownership: it
    /// accepts on them and disposes them when it is disposed.
    /// </summary>
    public required IReadOnlyList<Socket> Listeners { get; init; }

    /// <summary>
    /// Where an accepted connection was headed before DNAT (<c>SO_ORIGINAL_DST</c> in production).
    /// Null, or an exception, refuses the connection.
    /// </summary>
    public required Func<Socket, IPEndPoint?> OriginalDestination { get; init; }

    /// <summary>
    /// Where raw TCP is allowed (<see cref="NetworkPolicy.CheckRawTcp"/>): how long a silent client is
    /// waited for before it is relayed raw, for protocols where the server speaks first (SMTP, MySQL).
    /// Default 500 ms.
    /// </summary>
    public TimeSpan SniffTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Everywhere else: how long a client may take to send a complete HTTP request line or a TLS
    /// ClientHello before the connection is closed (never relayed). Default 30 s.
    /// </summary>
    public TimeSpan FirstByteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Connections the guest may hold open at once; past it new ones are closed at accept. Bounds
    /// what a guest can make the owner hold (sockets, buffers, upstream connections). Default 4096.
    /// </summary>
    public int MaxConnections { get; init; } = 4096;

    /// <summary>Largest non-SSE response body that <c>body_replacements</c> will buffer; larger ones fail closed (502). Default 8 MiB.</summary>
    public int MaxRewriteBodyBytes { get; init; } = 8 << 20;

    /// <summary>The clock of event times and certificate validity.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}
