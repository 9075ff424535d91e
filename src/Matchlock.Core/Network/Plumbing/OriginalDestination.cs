using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Plumbing;

/// <summary>
/// The address a guest connection was really for, before the sandbox firewall DNATed it to the
/// proxy: netfilter's <c>SO_ORIGINAL_DST</c> (linux/netfilter_ipv4.h, level SOL_IP, option 80),
/// which conntrack answers for sockets whose flow it translated.
/// </summary>
internal static class OriginalDestination
{
    private const int SolIp = 0;
    private const int SoOriginalDst = 80;
    private const ushort AfInet = 2;

    /// <summary>The pre-DNAT destination of an accepted connection.</summary>
    /// <exception cref="SocketException">No NAT record (ENOENT): the connection was not redirected.</exception>
    public static IPEndPoint Get(Socket accepted)
    {
        ArgumentNullException.ThrowIfNull(accepted);

        // struct sockaddr_in: sa_family (host order), sin_port (network order), sin_addr, 8 bytes zero.
        Span<byte> address = stackalloc byte[16];
        var length = accepted.GetRawSocketOption(SolIp, SoOriginalDst, address);
        if (length < 8 || BinaryPrimitives.ReadUInt16LittleEndian(address) != AfInet)
        {
            throw new SocketException((int)SocketError.AddressFamilyNotSupported);
        }

        var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        return new IPEndPoint(new IPAddress(address.Slice(4, 4)), port);
    }

    /// <summary>Like <see cref="Get"/>, false instead of an exception when there is no NAT record.</summary>
    public static bool TryGet(Socket accepted, out IPEndPoint? destination)
    {
        try
        {
            destination = Get(accepted);
            return true;
        }
        catch (SocketException)
        {
            destination = null;
            return false;
        }
    }
}
