using System.Globalization;
using System.Net;

namespace Matchlock.Core.PortForwarding;

/// <summary>
/// One <c>[LOCAL:]REMOTE</c> of <c>port-forward</c> / <c>run -p</c>: a host port and the guest
/// port it leads to. LOCAL defaults to REMOTE; 0 asks the host for a free port.
/// </summary>
public readonly record struct PortMapping(int LocalPort, int RemotePort)
{
    /// <exception cref="ArgumentException">Not <c>[LOCAL:]REMOTE</c> with ports in range.</exception>
    public static PortMapping Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().Split(':');
        return parts.Length switch
        {
            1 => new PortMapping(Port(parts[0], text, "REMOTE", allowZero: false), Port(parts[0], text, "REMOTE", allowZero: false)),
            2 => new PortMapping(Port(parts[0], text, "LOCAL", allowZero: true), Port(parts[1], text, "REMOTE", allowZero: false)),
            _ => throw new ArgumentException($"port mapping \"{text}\" must be [LOCAL:]REMOTE, e.g. 8080 or 18080:8080 (bind addresses go in --address)"),
        };
    }

    private static int Port(string value, string whole, string which, bool allowZero)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535 || (port == 0 && !allowZero))
        {
            throw new ArgumentException(
                $"port mapping \"{whole}\": {which} \"{value}\" is not a TCP port (1-65535{(allowZero ? "; 0 picks a free local port" : "")})");
        }

        return port;
    }

    public override string ToString() => LocalPort.ToString(CultureInfo.InvariantCulture) + ":" + RemotePort.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A host listener that is forwarding: where it listens and the guest port it leads to.</summary>
public sealed record PortBinding(IPAddress Address, int LocalPort, int RemotePort)
{
    /// <summary><c>127.0.0.1:8080</c> / <c>[::1]:8080</c>.</summary>
    public string Endpoint => new IPEndPoint(Address, LocalPort).ToString();

    public override string ToString() => $"{Endpoint} -> {RemotePort}";
}
