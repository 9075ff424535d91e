using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Matchlock.Core.Network.Dns;

/// <summary>
/// Turns the labels of a queried name into the canonical host name the policy speaks: lower-case
/// ASCII, labels joined by dots, no trailing dot.
/// </summary>
/// <remarks>
/// Only names that can be host names pass (letters, digits, <c>-</c> and <c>_</c>; labels of 1–63
/// octets; at most 253 characters; a last label that is not all digits, so <c>1.2.3.4</c> is not a
/// name a resolver would turn into itself). Anything else (binary labels, dots or spaces inside a
/// label, the root) cannot match a host rule and is answered NXDOMAIN without asking anyone.
/// Internationalised names arrive as A-labels (<c>xn--…</c>) and pass as they are. When the
/// egress proxy's shared <c>HostName</c> type lands, this should defer to it.
/// </remarks>
internal static class DnsQueryName
{
    private const int MaxNameLength = 253;
    private const int MaxLabelLength = 63;

    public static bool TryCanonicalize(IReadOnlyList<string> labels, [NotNullWhen(true)] out string? name)
    {
        name = null;
        if (labels.Count == 0)
        {
            return false;
        }

        var builder = new StringBuilder(MaxNameLength);
        foreach (var label in labels)
        {
            if (label.Length is 0 or > MaxLabelLength)
            {
                return false;
            }

            if (builder.Length > 0)
            {
                builder.Append('.');
            }

            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not '-' and not '_')
                {
                    return false;
                }

                builder.Append(char.ToLowerInvariant(c));
            }

            if (builder.Length > MaxNameLength)
            {
                return false;
            }
        }

        if (labels[^1].All(char.IsAsciiDigit))
        {
            return false;
        }

        name = builder.ToString();
        return true;
    }
}
