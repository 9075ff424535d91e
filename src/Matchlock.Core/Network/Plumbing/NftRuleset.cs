using System.Globalization;
using System.Net;
using System.Text;

namespace Matchlock.Core.Network.Plumbing;

/// <summary>
/// Renders the <c>inet matchlock</c> table of a sandbox's namespace as an <c>nft -f</c> script
/// (docs/ARCHITECTURE.md D7). The script re-creates the table in one transaction, so a sandbox is never
/// without its firewall: the first version (no redirects) drops all guest traffic, and the
/// second adds the DNAT rules in place of it.
/// </summary>
/// <remarks>
/// Why these rules:
/// <list type="bullet">
/// <item>prerouting (nat): the guest's TCP/UDP 53 go to the DNS listeners, every other guest TCP
/// connection to the proxy port; conntrack keeps the pre-DNAT destination, which the proxy reads
/// with SO_ORIGINAL_DST. Only IPv4: the inet table sees IPv6 too, and it falls to the drops.</item>
/// <item>input (filter, policy drop): loopback, replies (established/related) and new flows to
/// exactly the redirect targets. Other UDP, ICMP, IPv6 and anything not DNATed end here.</item>
/// <item>forward (policy drop): belt and braces; the namespace has ip_forward off and no route out.</item>
/// <item>output (policy drop): the namespace only answers; it never opens connections to the guest.</item>
/// </list>
/// ARP is not in the inet family, so the guest can still resolve the gateway's MAC.
/// </remarks>
internal static class NftRuleset
{
    public const string Family = "inet";

    public const string Table = "matchlock";

    public static string Render(string tapName, IPAddress gateway, NetworkRedirects? redirects)
    {
        var gw = gateway.ToString();
        var tap = Quote(tapName);
        var sb = new StringBuilder();

        // "add" then "delete" then define: works whether or not the table exists, and nft -f
        // applies the whole file as one transaction (all of it or none).
        sb.Append(CultureInfo.InvariantCulture, $"add table {Family} {Table}\n");
        sb.Append(CultureInfo.InvariantCulture, $"delete table {Family} {Table}\n");
        sb.Append(CultureInfo.InvariantCulture, $"table {Family} {Table} {{\n");

        sb.Append("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
        if (redirects is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\t\tiifname {tap} meta nfproto ipv4 udp dport 53 dnat ip to {gw}:{redirects.DnsUdpPort}\n");
            sb.Append(CultureInfo.InvariantCulture, $"\t\tiifname {tap} meta nfproto ipv4 tcp dport 53 dnat ip to {gw}:{redirects.DnsTcpPort}\n");
            sb.Append(CultureInfo.InvariantCulture, $"\t\tiifname {tap} meta nfproto ipv4 meta l4proto tcp dnat ip to {gw}:{redirects.TcpProxyPort}\n");
        }

        sb.Append("\t}\n");

        sb.Append("\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n");
        sb.Append("\t\tiif \"lo\" accept\n");
        sb.Append("\t\tct state established,related accept\n");
        if (redirects is not null)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"\t\tiifname {tap} ip daddr {gw} tcp dport {{ {redirects.TcpProxyPort}, {redirects.DnsTcpPort} }} ct state new accept\n");
            sb.Append(CultureInfo.InvariantCulture,
                $"\t\tiifname {tap} ip daddr {gw} udp dport {redirects.DnsUdpPort} ct state new accept\n");
        }

        sb.Append("\t}\n");
        sb.Append("\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n");
        sb.Append("\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n");
        sb.Append("\t\toif \"lo\" accept\n");
        sb.Append("\t\tct state established,related accept\n");
        sb.Append("\t}\n");
        sb.Append("}\n");
        return sb.ToString();
    }

    private static string Quote(string name) => "\"" + name + "\"";
}
