using System.Net;
using Matchlock.Core.PortForwarding;
using Matchlock.Protocol;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

public sealed partial class Sandbox
{
    /// <summary>
    /// Opens a TCP connection to <paramref name="port"/> on the guest's loopback. Write to its
    /// stdin channel, read its stdout channel; the reply says how it ended (an error when nothing
    /// listens there). <see cref="MuxRelay"/> drives one from a host socket.
    /// </summary>
    public Task<MuxStream> ConnectPortAsync(int port, CancellationToken cancellationToken) =>
        OpenAsync(new PortConnectRequest { Port = port }, cancellationToken);

    /// <summary>Listens on host ports and forwards each connection to its guest port (<c>run -p</c>).</summary>
    /// <exception cref="PortForwardException">A port is taken or not allowed.</exception>
    public PortForwarder ForwardPorts(IReadOnlyList<PortMapping> mappings, IReadOnlyList<IPAddress>? addresses, Action<string> log) =>
        PortForwarder.Start(mappings, addresses, ConnectPortAsync, DescribePortFailure, log);

    /// <summary>The guest's reason a forwarded connection failed (e.g. nothing listens there), or null.</summary>
    public static string? DescribePortFailure(ReadOnlyMemory<byte>? reply)
    {
        if (reply is not { } payload)
        {
            return null; // reset: the client went away, or the sandbox stopped; nothing to add
        }

        var parsed = ProtocolSerializer.ReadReply(payload);
        return parsed.Ok ? null : parsed.Error;
    }
}
