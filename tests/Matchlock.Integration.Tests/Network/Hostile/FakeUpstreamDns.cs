using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// The "internet's" name server for the suite, given to the sandbox as its <c>--dns-servers</c>.
/// The sandbox's resolver asks upstream servers on port 53 only (<c>SealedNetwork</c> builds
/// <c>IPEndPoint(server, 53)</c>), so this listens on a loopback address of its own,
/// <see cref="Address"/>:53, rather than on a port-0 socket. Every query packet is recorded
/// whole (sink <c>dns</c>); <c>rebind.test</c> resolves to the host's 127.0.0.1 (a rebinding
/// answer the proxy must not honour), everything else is NXDOMAIN.
/// </summary>
internal static class FakeUpstreamDns
{
    public static readonly IPAddress Address = IPAddress.Parse("127.0.53.53");

    public const string RebindName = "rebind.test";

    public static RecordingUdpServer Start(Recordings recordings)
    {
        try
        {
            return RecordingUdpServer.Udp("dns", Address, 53, recordings, Answer);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new InvalidOperationException($"the fake upstream DNS needs UDP {Address}:53 (root, and no resolver bound to 0.0.0.0:53): {e.Message}", e);
        }
    }

    /// <summary>The reply to one query (RFC 1035 §4.1), or null for a packet that is not one.</summary>
    internal static byte[]? Answer(byte[] query)
    {
        if (query.Length < 12 || (query[2] & 0x80) != 0 || BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(4)) != 1)
        {
            return null;
        }

        var labels = new List<string>();
        var i = 12;
        while (i < query.Length && query[i] != 0)
        {
            var length = query[i];
            if (length > 63 || i + 1 + length > query.Length)
            {
                return null;
            }

            labels.Add(Encoding.ASCII.GetString(query, i + 1, length));
            i += 1 + length;
        }

        if (i + 5 > query.Length)
        {
            return null;
        }

        var questionEnd = i + 5;
        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(i + 1));
        var name = string.Join('.', labels);
        var rebind = type == 1 && string.Equals(name, RebindName, StringComparison.OrdinalIgnoreCase);

        var reply = new List<byte>(query.AsSpan(0, questionEnd).ToArray());
        reply[2] = (byte)(0x80 | (query[2] & 0x01)); // QR, keep RD
        reply[3] = (byte)(0x80 | (rebind ? 0 : 3));   // RA; NOERROR or NXDOMAIN
        reply[6] = 0;
        reply[7] = (byte)(rebind ? 1 : 0);            // ANCOUNT
        reply[8] = reply[9] = reply[10] = reply[11] = 0;
        if (rebind)
        {
            // Name: pointer to the question; A IN, TTL 30, 4 octets of 127.0.0.1.
            reply.AddRange([0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1E, 0x00, 0x04, 127, 0, 0, 1]);
        }

        return [.. reply];
    }
}
