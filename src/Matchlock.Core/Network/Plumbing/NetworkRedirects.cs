namespace Matchlock.Core.Network.Plumbing;

/// <summary>
/// Where the sandbox's firewall sends guest traffic: ports on the gateway address, normally the
/// ones <see cref="NetworkNamespace.OpenTcpListener"/> and <see cref="NetworkNamespace.OpenUdp"/> got.
/// </summary>
/// <param name="TcpProxyPort">Every guest TCP connection except port 53 (original destination via <see cref="OriginalDestination"/>).</param>
/// <param name="DnsUdpPort">Guest UDP to port 53 of any address.</param>
/// <param name="DnsTcpPort">Guest TCP to port 53 of any address.</param>
internal sealed record NetworkRedirects(int TcpProxyPort, int DnsUdpPort, int DnsTcpPort)
{
    internal void Validate()
    {
        foreach (var (port, what) in new[] { (TcpProxyPort, nameof(TcpProxyPort)), (DnsUdpPort, nameof(DnsUdpPort)), (DnsTcpPort, nameof(DnsTcpPort)) })
        {
            if (port is < 1 or > 65535)
            {
                throw new ArgumentException($"{what} must be a port between 1 and 65535 (was {port}); pass the port of a socket opened in the sandbox's namespace");
            }
        }

        if (TcpProxyPort == DnsTcpPort)
        {
            throw new ArgumentException($"TcpProxyPort and DnsTcpPort must differ (both {TcpProxyPort})");
        }
    }
}
