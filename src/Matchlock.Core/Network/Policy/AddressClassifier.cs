using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Policy;

/// <summary>
/// Says whether an address is one a sandbox must not reach by default, and names the range.
/// Addresses that embed an IPv4 address (IPv4-mapped <c>::ffff:a.b.c.d</c>, IPv4-compatible
/// <c>::a.b.c.d</c>, NAT64 <c>64:ff9b::/96</c> (RFC 6052) and 6to4 <c>2002::/16</c> (RFC 3056)) are
/// judged by the embedded address, since the host stack or a translator on the path delivers them
/// there: <c>::ffff:169.254.169.254</c> is the metadata service.
/// </summary>
internal static class AddressClassifier
{
    /// <summary>The range an address falls in when it is not public; null when it is public.</summary>
    public static string? NonPublicRange(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return ClassifyV6(address);
        }

        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return ClassifyV4(b);
    }

    private static string? ClassifyV4(ReadOnlySpan<byte> b) => b switch
    {
        [0, ..] => "the unspecified/\"this network\" range 0.0.0.0/8",
        [10, ..] => "a private range (RFC 1918, 10.0.0.0/8)",
        [100, >= 64 and <= 127, ..] => "the carrier-grade NAT range (RFC 6598, 100.64.0.0/10)",
        [127, ..] => "loopback (127.0.0.0/8)",
        [169, 254, 169, 254] => "the cloud metadata service (169.254.169.254)",
        [169, 254, ..] => "link-local (169.254.0.0/16)",
        [172, >= 16 and <= 31, ..] => "a private range (RFC 1918, 172.16.0.0/12)",
        [192, 0, 0, _] => "the IETF protocol assignments range 192.0.0.0/24",
        [192, 168, ..] => "a private range (RFC 1918, 192.168.0.0/16)",
        [198, 18 or 19, ..] => "the benchmarking range 198.18.0.0/15",
        [>= 224 and <= 239, ..] => "multicast (224.0.0.0/4)",
        [>= 240, ..] => "the reserved/broadcast range 240.0.0.0/4",
        _ => null,
    };

    private static string? ClassifyV6(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return Embedded(address.MapToIPv4(), "IPv4-mapped");
        }

        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        if (address.Equals(IPAddress.IPv6None))
        {
            return "the unspecified address ::";
        }

        if (address.Equals(IPAddress.IPv6Loopback))
        {
            return "loopback (::1)";
        }

        // ::a.b.c.d (deprecated IPv4-compatible): first 96 bits zero.
        if (b[..12].IndexOfAnyExcept((byte)0) < 0)
        {
            return Embedded(new IPAddress(b[12..]), "IPv4-compatible");
        }

        // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) and the local-use 64:ff9b:1::/48 (RFC 8215).
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
        {
            if (b[4..12].IndexOfAnyExcept((byte)0) < 0)
            {
                return Embedded(new IPAddress(b[12..]), "NAT64");
            }

            return "the local-use NAT64 range 64:ff9b:1::/48";
        }

        // 6to4 2002:a.b.c.d::/48 (RFC 3056).
        if (b[0] == 0x20 && b[1] == 0x02)
        {
            return Embedded(new IPAddress(b[2..6]), "6to4");
        }

        return b switch
        {
            [0xfe, >= 0x80 and <= 0xbf, ..] => "link-local (fe80::/10)",
            [0xfe, >= 0xc0, ..] => "the deprecated site-local range fec0::/10",
            [>= 0xfc and <= 0xfd, ..] => "a unique local range (ULA, fc00::/7)",
            [0xff, ..] => "multicast (ff00::/8)",
            [0x01, 0x00, 0, 0, 0, 0, 0, 0, ..] => "the discard-only range 100::/64",
            _ => null,
        };
    }

    private static string? Embedded(IPAddress v4, string how)
    {
        Span<byte> b = stackalloc byte[4];
        v4.TryWriteBytes(b, out _);
        var inner = ClassifyV4(b);
        return inner is null ? null : $"{inner}, {how} as an IPv6 address";
    }
}
