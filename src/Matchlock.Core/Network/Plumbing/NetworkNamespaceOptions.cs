using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Plumbing;

/// <summary>
/// Addresses and link settings of one sandbox's network (docs/ARCHITECTURE.md D7). Immutable; copy with <c>with</c>.
/// Every sandbox has its own namespace, so all of them can use the same subnet.
/// </summary>
/// <remarks>
/// The default is a /30: only the gateway and the guest are on-link, so every other IPv4 address
/// the guest tries is routed to the gateway and DNATed. With a wider prefix the guest would ARP
/// for on-subnet addresses, nobody would answer, and those connections would hang instead of
/// reaching the proxy.
/// </remarks>
internal sealed record NetworkNamespaceOptions
{
    public int Mtu { get; init; } = 1500;

    /// <summary>The host end: the tap's address, where the proxy and DNS listeners are bound.</summary>
    public IPAddress Gateway { get; init; } = IPAddress.Parse("10.77.0.1");

    public IPAddress GuestAddress { get; init; } = IPAddress.Parse("10.77.0.2");

    public int PrefixLength { get; init; } = 30;

    /// <summary>Tap name inside the namespace (at most 15 characters, IFNAMSIZ).</summary>
    public string TapName { get; init; } = "tap0";

    /// <summary>Interface name the guest configures (virtio_net's first NIC).</summary>
    public string GuestInterface { get; init; } = "eth0";

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Mtu is < 576 or > 65535)
        {
            throw new ArgumentException($"Mtu must be between 576 and 65535 (was {Mtu})");
        }

        if (PrefixLength is < 8 or > 30)
        {
            throw new ArgumentException($"PrefixLength must be between 8 and 30 (was {PrefixLength})");
        }

        foreach (var (address, what) in new[] { (Gateway, nameof(Gateway)), (GuestAddress, nameof(GuestAddress)) })
        {
            // Private addresses only: they exist inside the sandbox's namespace and nowhere else.
            if (address is null || address.AddressFamily != AddressFamily.InterNetwork || !IsPrivate(address))
            {
                throw new ArgumentException($"{what} must be a private IPv4 address (10/8, 172.16/12, 192.168/16); was {address}");
            }
        }

        if (Gateway.Equals(GuestAddress) || Network(Gateway) != Network(GuestAddress))
        {
            throw new ArgumentException($"Gateway {Gateway} and GuestAddress {GuestAddress} must be different addresses of one /{PrefixLength}");
        }

        foreach (var (name, what) in new[] { (TapName, nameof(TapName)), (GuestInterface, nameof(GuestInterface)) })
        {
            if (string.IsNullOrEmpty(name) || name.Length > 15 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                throw new ArgumentException($"{what} '{name}' must be 1-15 characters of [A-Za-z0-9._-]");
            }
        }
    }

    internal uint Network(IPAddress address) => ToUInt32(address) & Mask;

    internal uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    internal static uint ToUInt32(IPAddress address)
    {
        var b = address.GetAddressBytes();
        return (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
    }

    private static bool IsPrivate(IPAddress address)
    {
        var b = address.GetAddressBytes();
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168);
    }
}
