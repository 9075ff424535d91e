namespace Matchlock.Core.Network.Policy;

/// <summary>
/// One allow-list entry (docs/COMPATIBILITY.md "Network policy"): <c>*</c> matches every host;
/// <c>*.x.com</c> any subdomain of x.com at any depth but not x.com itself; <c>x.*</c> any host whose
/// first label is x; any other <c>*</c> matches within one label (<c>api-*.x.com</c>). Patterns
/// without <c>*</c> match exactly. Matching is on <see cref="HostName"/> values, so it is
/// case-insensitive and trailing-dot and IDN insensitive.
/// </summary>
public sealed class HostPattern : IEquatable<HostPattern>
{
    private enum Kind
    {
        All,
        Exact,
        AnySubdomain,
        Prefix,
        PerLabel,
    }

    private readonly Kind _kind;
    private readonly string _text;
    private readonly string[] _labels;

    private HostPattern(Kind kind, string text, string[] labels)
    {
        _kind = kind;
        _text = text;
        _labels = labels;
    }

    /// <summary>The canonical pattern text (lower-case, punycode, no trailing dot).</summary>
    public string Value => _text;

    /// <summary>Parses one pattern; throws <see cref="FormatException"/> naming the bad entry.</summary>
    public static HostPattern Parse(string text)
    {
        var s = (text ?? string.Empty).Trim();
        if (s == "*")
        {
            return new HostPattern(Kind.All, "*", []);
        }

        if (!s.Contains('*'))
        {
            if (!HostName.TryParse(s, out var host, out var error))
            {
                throw new FormatException($"allow-list entry '{text}': {error}");
            }

            return new HostPattern(Kind.Exact, host.Value, []);
        }

        if (s.EndsWith('.'))
        {
            s = s[..^1];
        }

        // Validate the non-wildcard parts as a host name by substituting a harmless label character.
        if (!HostName.TryParse(s.Replace("*", "w", StringComparison.Ordinal), out _, out var why))
        {
            throw new FormatException($"allow-list entry '{text}': {why}");
        }

        var lower = s.ToLowerInvariant();
        var labels = lower.Split('.');
        if (labels[0] == "*" && labels.Length > 1 && !labels[1..].Any(l => l.Contains('*')))
        {
            return new HostPattern(Kind.AnySubdomain, lower, labels);
        }

        if (labels[^1] == "*" && labels.Length > 1 && !labels[..^1].Any(l => l.Contains('*')))
        {
            return new HostPattern(Kind.Prefix, lower, labels);
        }

        return new HostPattern(Kind.PerLabel, lower, labels);
    }

    /// <summary>Parses a flag value: comma-separated patterns, blanks ignored.</summary>
    public static IReadOnlyList<HostPattern> ParseList(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(Parse)
            .ToList();

    public bool Matches(HostName host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var value = host.Value;
        switch (_kind)
        {
            case Kind.All:
                return true;
            case Kind.Exact:
                return string.Equals(_text, value, StringComparison.Ordinal);
            case Kind.AnySubdomain:
                // "*.x.com" is stored as "*.x.com"; the suffix to match is ".x.com" with at least one label before it.
                var suffix = _text[1..];
                return !host.IsIPAddress && value.Length > suffix.Length && value.EndsWith(suffix, StringComparison.Ordinal);
            case Kind.Prefix:
                var prefix = _text[..^1];
                return !host.IsIPAddress && value.Length > prefix.Length && value.StartsWith(prefix, StringComparison.Ordinal);
            default:
                if (host.IsIPAddress)
                {
                    return false;
                }

                var hostLabels = value.Split('.');
                if (hostLabels.Length != _labels.Length)
                {
                    return false;
                }

                for (var i = 0; i < _labels.Length; i++)
                {
                    if (!LabelMatches(_labels[i], hostLabels[i]))
                    {
                        return false;
                    }
                }

                return true;
        }
    }

    /// <summary>Glob within one label: '*' matches any run of characters (none included), never a dot.</summary>
    private static bool LabelMatches(ReadOnlySpan<char> pattern, ReadOnlySpan<char> label)
    {
        var star = pattern.IndexOf('*');
        if (star < 0)
        {
            return pattern.SequenceEqual(label);
        }

        if (!label.StartsWith(pattern[..star]))
        {
            return false;
        }

        var rest = pattern[(star + 1)..];
        for (var i = star; i <= label.Length; i++)
        {
            if (LabelMatches(rest, label[i..]))
            {
                return true;
            }
        }

        return false;
    }

    public bool Equals(HostPattern? other) => other is not null && string.Equals(_text, other._text, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as HostPattern);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_text);

    public override string ToString() => _text;
}
