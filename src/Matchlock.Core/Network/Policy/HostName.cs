using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Matchlock.Core.Network.Policy;

/// <summary>
/// The one canonical form of a host name or IP literal that every policy decision is made on
/// (docs/ARCHITECTURE.md D8): lower-case ASCII, internationalized labels converted to punycode (IDNA), no trailing
/// dot, IPv6 without brackets or zone. Comparing strings straight from SNI, Host headers, DNS
/// questions and CLI flags instead is how case, trailing-dot and IDN bypasses happen, so nothing
/// else in the network code compares raw host strings.
/// </summary>
/// <remarks>
/// A host whose last label is numeric is parsed as an IPv4 literal the way URL parsers do
/// (WHATWG URL "ends in a number"), so <c>127.1</c> and <c>0x7f.0.0.1</c> are <c>127.0.0.1</c>, not
/// names that could slip past the address checks.
/// </remarks>
public sealed class HostName : IEquatable<HostName>
{
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    private HostName(string value, IPAddress? address)
    {
        Value = value;
        Address = address;
    }

    /// <summary>The canonical text: <c>api.example.com</c>, <c>10.0.0.1</c> or <c>::1</c> (no brackets).</summary>
    public string Value { get; }

    /// <summary>The address when this host is an IP literal; null for names.</summary>
    public IPAddress? Address { get; }

    [MemberNotNullWhen(true, nameof(Address))]
    public bool IsIPAddress => Address is not null;

    /// <summary>The form for a URI authority: IPv6 literals in brackets.</summary>
    public string UriHost => Address?.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{Value}]" : Value;

    /// <summary>Parses or throws <see cref="FormatException"/> with a message saying what is wrong.</summary>
    public static HostName Parse(string text) =>
        TryParse(text, out var host, out var error) ? host : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out HostName? host) => TryParse(text, out host, out _);

    public static bool TryParse(string? text, [NotNullWhen(true)] out HostName? host, [NotNullWhen(false)] out string? error)
    {
        host = null;
        var s = (text ?? string.Empty).Trim();
        if (s.Length == 0)
        {
            error = "host name is empty";
            return false;
        }

        if (s.StartsWith('[') || s.Contains(':'))
        {
            return TryParseIPv6(s, text!, out host, out error);
        }

        if (s.EndsWith('.'))
        {
            s = s[..^1];
        }

        if (s.Length == 0 || s.StartsWith('.') || s.Contains("..", StringComparison.Ordinal))
        {
            error = $"'{text}' is not a valid host name (empty label)";
            return false;
        }

        var lastLabel = s[(s.LastIndexOf('.') + 1)..];
        if (IsNumericLabel(lastLabel))
        {
            if (IPAddress.TryParse(s, out var v4) && v4.AddressFamily == AddressFamily.InterNetwork)
            {
                host = new HostName(v4.ToString(), v4);
                error = null;
                return true;
            }

            error = $"'{text}' looks like an IPv4 address but is not a valid one";
            return false;
        }

        string ascii;
        try
        {
            ascii = s.All(char.IsAscii) ? s.ToLowerInvariant() : Idn.GetAscii(s).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            error = $"'{text}' is not a valid internationalized host name";
            return false;
        }

        if (ascii.Length > 253)
        {
            error = $"host name is {ascii.Length} characters long; DNS allows at most 253";
            return false;
        }

        foreach (var label in ascii.Split('.'))
        {
            if (label.Length is 0 or > 63)
            {
                error = $"'{text}' has a label of {label.Length} characters; labels are 1 to 63";
                return false;
            }

            if (label[0] == '-' || label[^1] == '-')
            {
                error = $"'{text}' has a label that starts or ends with '-'";
                return false;
            }

            // Letters, digits, '-' (RFC 1123) and '_' (used in real DNS names such as _dmarc, and accepted by resolvers).
            foreach (var c in label)
            {
                if (!(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_'))
                {
                    error = $"'{text}' contains '{c}', which is not allowed in a host name";
                    return false;
                }
            }
        }

        host = new HostName(ascii, null);
        error = null;
        return true;
    }

    /// <summary>The host for an address (e.g. a passthrough destination or a Host header that is an IP).</summary>
    public static HostName FromAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var plain = address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0 ? new IPAddress(address.GetAddressBytes()) : address;
        return new HostName(plain.ToString(), plain);
    }

    private static bool TryParseIPv6(string s, string original, out HostName? host, out string? error)
    {
        host = null;
        var inner = s;
        if (s.StartsWith('['))
        {
            if (!s.EndsWith(']'))
            {
                error = $"'{original}' has an opening '[' without a closing ']'";
                return false;
            }

            inner = s[1..^1];
        }

        if (inner.Contains('%'))
        {
            error = $"'{original}' has an IPv6 zone id, which is meaningless outside the guest";
            return false;
        }

        if (!IPAddress.TryParse(inner, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
        {
            error = $"'{original}' is not a valid host name or IPv6 address";
            return false;
        }

        host = new HostName(v6.ToString(), v6);
        error = null;
        return true;
    }

    private static bool IsNumericLabel(string label) =>
        label.Length > 0 && (label.All(char.IsAsciiDigit) ||
                             (label.Length > 1 && label[0] == '0' && (label[1] is 'x' or 'X')));

    public bool Equals(HostName? other) => other is not null && string.Equals(Value, other.Value, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as HostName);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value);

    public override string ToString() => Value;

    public static bool operator ==(HostName? left, HostName? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(HostName? left, HostName? right) => !(left == right);
}
