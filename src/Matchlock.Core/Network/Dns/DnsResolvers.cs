using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;

namespace Matchlock.Core.Network.Dns;

/// <summary>
/// The resolvers an allowed name can be sent to (<see cref="DnsResponderOptions.Resolve"/>). Both
/// return an empty array for a name without addresses of the family, and throw for failures.
/// </summary>
internal static class DnsResolvers
{
    /// <summary>
    /// The host's own resolver (<c>getaddrinfo</c>: the host's <c>/etc/hosts</c>, resolv.conf and
    /// nsswitch), the same view of the network the proxy connects through.
    /// </summary>
    public static async Task<IPAddress[]> Host(string name, AddressFamily family, CancellationToken cancellationToken)
    {
        try
        {
            return await System.Net.Dns.GetHostAddressesAsync(name, family, cancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.HostNotFound or SocketError.NoData)
        {
            return [];
        }
    }

    /// <summary>
    /// A resolver that asks the given name servers (<c>--dns-servers</c>) directly, over UDP with
    /// TCP when a reply is truncated, through DnsClient's <see cref="LookupClient"/> (random query
    /// ids and source ports, reply matching). Only A and AAAA questions for allowed names are ever
    /// sent.
    /// </summary>
    /// <param name="servers">The name servers, tried in order; at least one.</param>
    /// <param name="timeout">How long to wait for one server's reply.</param>
    public static Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>> Upstream(IReadOnlyList<IPEndPoint> servers, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfZero(servers.Count);
        var client = new LookupClient(new LookupClientOptions(servers.Select(s => new NameServer(s)).ToArray())
        {
            // The responder answers with its own short TTL and the proxy pins what it answered; a
            // second cache here would only serve addresses the upstream has since changed.
            UseCache = false,
            Timeout = timeout,
            Retries = 1,
            UseTcpFallback = true,
            ThrowDnsErrors = false,
            ContinueOnDnsError = true,
        });

        return async (name, family, cancellationToken) =>
        {
            var type = family == AddressFamily.InterNetworkV6 ? QueryType.AAAA : QueryType.A;
            var response = await client.QueryAsync(name, type, QueryClass.IN, cancellationToken);
            if (response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain)
            {
                return [];
            }

            if (response.HasError)
            {
                throw new IOException($"the name servers answered {response.Header.ResponseCode} for {name}: {response.ErrorMessage}");
            }

            // CNAME chains collapse: every address record of the reply belongs to the queried name's
            // chain, and the responder answers the queried name directly.
            return response.Answers.OfType<AddressRecord>()
                .Select(r => r.Address)
                .Where(a => a.AddressFamily == family)
                .ToArray();
        };
    }
}
