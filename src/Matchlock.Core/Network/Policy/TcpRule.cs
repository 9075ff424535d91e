using System.Globalization;

namespace Matchlock.Core.Network.Policy;

/// <summary>
/// One explicit permission for raw TCP (<c>--allow-tcp HOST:PORT</c>): connections that are neither
/// HTTP nor TLS may be relayed byte for byte to <see cref="Port"/> of a host matching
/// <see cref="Host"/> — ssh to a git host is the case it exists for. It does not allow HTTP or TLS
/// to that host (those are always intercepted and need the allow-list), and it is decided by name:
/// see <see cref="NetworkPolicy.CheckRawTcp"/> and docs/NETWORK.md.
/// </summary>
public sealed class TcpRule : IEquatable<TcpRule>
{
    private TcpRule(HostPattern host, int port)
    {
        Host = host;
        Port = port;
    }

    /// <summary>Which names the rule covers (same globs as the allow-list; an IP literal matches that address only).</summary>
    public HostPattern Host { get; }

    /// <summary>The destination port, exactly (1–65535).</summary>
    public int Port { get; }

    /// <summary>
    /// Parses <c>HOST:PORT</c> (<c>[v6]:PORT</c> for an IPv6 literal). Throws
    /// <see cref="FormatException"/> with a message that names the entry and the expected form.
    /// </summary>
    public static TcpRule Parse(string text)
    {
        var s = (text ?? string.Empty).Trim();
        var colon = s.LastIndexOf(':');
        var expected = $"--allow-tcp '{text}' must be HOST:PORT, e.g. github.com:22 (IPv6 as [::1]:22)";
        if (colon <= 0 || colon == s.Length - 1)
        {
            throw new FormatException(expected);
        }

        var hostText = s[..colon];
        if (hostText.StartsWith('[') && hostText.EndsWith(']'))
        {
            hostText = hostText[1..^1];
        }
        else if (hostText.Contains(':', StringComparison.Ordinal))
        {
            throw new FormatException(expected);
        }

        if (!int.TryParse(s[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new FormatException($"--allow-tcp '{text}': the port must be a number from 1 to 65535");
        }

        HostPattern host;
        try
        {
            host = HostPattern.Parse(hostText);
        }
        catch (FormatException e)
        {
            throw new FormatException($"--allow-tcp '{text}': {e.Message}", e);
        }

        return new TcpRule(host, port);
    }

    /// <summary>Parses flag values: comma-separated rules, blanks ignored.</summary>
    public static IReadOnlyList<TcpRule> ParseList(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(Parse)
            .ToList();

    /// <summary>Whether this rule lets raw TCP go to <paramref name="port"/> of <paramref name="host"/>.</summary>
    public bool Matches(HostName host, int port)
    {
        ArgumentNullException.ThrowIfNull(host);
        return port == Port && Host.Matches(host);
    }

    public bool Equals(TcpRule? other) => other is not null && other.Port == Port && other.Host.Equals(Host);

    public override bool Equals(object? obj) => Equals(obj as TcpRule);

    public override int GetHashCode() => HashCode.Combine(Host, Port);

    /// <summary>Canonical <c>host:port</c>.</summary>
    public override string ToString() => Host.Value.Contains(':', StringComparison.Ordinal) ? $"[{Host.Value}]:{Port}" : $"{Host.Value}:{Port}";
}
