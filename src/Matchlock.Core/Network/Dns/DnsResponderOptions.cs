using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Dns;

/// <summary>
/// What one sandbox's DNS responder serves on and how it decides. Immutable: the responder reads it
/// once in <see cref="DnsResponder.Start"/>.
/// </summary>
internal sealed record DnsResponderOptions
{
    /// <summary>
    /// A bound UDP socket (in production created inside the sandbox's network namespace, where
    /// nftables redirects the guest's port 53 to it). The responder owns it from
    /// <see cref="DnsResponder.Start"/> on and disposes it.
    /// </summary>
    public Socket? Udp { get; init; }

    /// <summary>A bound, listening TCP socket; owned by the responder like <see cref="Udp"/>.</summary>
    public Socket? Tcp { get; init; }

    /// <summary>
    /// The policy: may this canonical host name (lower case, no trailing dot) be resolved? Asked
    /// before any resolver, so a name the policy refuses never leaves the host as a query: with the
    /// original, <c>secret-data.attacker.com</c> reached the attacker's name server.
    /// </summary>
    public required Func<string, bool> MayResolve { get; init; }

    /// <summary>
    /// Fixed answers from <c>--add-host</c>, by canonical name; <see langword="null"/> when the name
    /// has none. These are answered without asking <see cref="MayResolve"/> or any resolver: the
    /// user declared them, and answering leaks nothing (the proxy still decides connections).
    /// </summary>
    public Func<string, IPAddress[]?>? StaticHosts { get; init; }

    /// <summary>
    /// Resolves an allowed name. An empty result means "no address". Defaults to the host's
    /// resolver (<see cref="DnsResolvers.Host"/>); <see cref="DnsResolvers.Upstream"/> asks the
    /// <c>--dns-servers</c> instead. Called with <see cref="AddressFamily.InterNetwork"/> only:
    /// the guest has no IPv6.
    /// </summary>
    public Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>>? Resolve { get; init; }

    /// <summary>
    /// Told every name and the addresses answered for it, before the answer is sent, so the egress
    /// proxy's pin exists before the guest can connect. If it throws, the guest gets SERVFAIL
    /// instead of an address the proxy does not know (fail closed).
    /// </summary>
    public Action<string, IReadOnlyList<IPAddress>>? OnAnswered { get; init; }

    /// <summary>Told every decision (for the sandbox's event stream). Must not block.</summary>
    public Action<DnsQueryEvent>? Events { get; init; }

    /// <summary>TTL of every answer: short, so allow-list changes and re-pinning take effect soon.</summary>
    public TimeSpan AnswerTtl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long one resolution may take before the guest gets SERVFAIL.</summary>
    public TimeSpan ResolveTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Queries handled at once, both transports together. Past it the UDP loop stops reading (the
    /// kernel's socket buffer absorbs or drops the excess) and TCP connections wait, so a guest
    /// flooding queries costs bounded memory and upstream load.
    /// </summary>
    public int MaxConcurrentQueries { get; init; } = 64;

    /// <summary>TCP connections served at once; more wait in the listen backlog.</summary>
    public int MaxTcpConnections { get; init; } = 16;

    /// <summary>A TCP connection idle this long (no complete query) is closed (RFC 7766 §6.2.3).</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Clock for the timeouts; a seam for tests.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
