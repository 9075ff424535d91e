using System.Text;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// One <c>WWW-Authenticate</c> challenge (RFC 7235 §4.1): a scheme and its auth-params, e.g.
/// <c>Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"</c>.
/// Parsed here rather than by <c>AuthenticationHeaderValue</c> because we need the params split and
/// unquoted, and the raw header keeps commas inside quoted scope lists intact.
/// </summary>
internal sealed class AuthChallenge
{
    private AuthChallenge(string scheme, Dictionary<string, string> parameters)
    {
        Scheme = scheme;
        Parameters = parameters;
    }

    public string Scheme { get; }

    /// <summary>Params by lower-case name (names are case-insensitive, RFC 7235 §2.1).</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; }

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public string? this[string name] => Parameters.TryGetValue(name, out var value) ? value : null;

    /// <summary>The challenge to answer: Bearer if offered (it works with and without credentials), else the first one.</summary>
    public static AuthChallenge? FromResponse(HttpResponseMessage response)
    {
        if (!response.Headers.NonValidated.TryGetValues("WWW-Authenticate", out var values))
        {
            return null;
        }

        var challenges = values.Select(Parse).OfType<AuthChallenge>().ToList();
        return challenges.FirstOrDefault(c => c.IsBearer) ?? challenges.FirstOrDefault();
    }

    public static AuthChallenge? Parse(string header)
    {
        var text = header.AsSpan().Trim();
        var space = text.IndexOfAny(' ', '\t');
        var scheme = (space < 0 ? text : text[..space]).ToString();
        if (scheme.Length == 0)
        {
            return null;
        }

        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var rest = space < 0 ? ReadOnlySpan<char>.Empty : text[(space + 1)..];
        while (true)
        {
            rest = rest.TrimStart(" \t,");
            var equals = rest.IndexOf('=');
            if (rest.IsEmpty || equals <= 0)
            {
                break;
            }

            var name = rest[..equals].Trim().ToString();
            rest = rest[(equals + 1)..].TrimStart(" \t");
            string value;
            if (!rest.IsEmpty && rest[0] == '"')
            {
                var builder = new StringBuilder();
                var i = 1;
                for (; i < rest.Length && rest[i] != '"'; i++)
                {
                    // quoted-pair: a backslash escapes the next character (RFC 7230 §3.2.6).
                    if (rest[i] == '\\' && i + 1 < rest.Length)
                    {
                        i++;
                    }

                    builder.Append(rest[i]);
                }

                value = builder.ToString();
                rest = i < rest.Length ? rest[(i + 1)..] : ReadOnlySpan<char>.Empty;
            }
            else
            {
                var comma = rest.IndexOf(',');
                value = (comma < 0 ? rest : rest[..comma]).Trim().ToString();
                rest = comma < 0 ? ReadOnlySpan<char>.Empty : rest[comma..];
            }

            parameters[name] = value;
        }

        return new AuthChallenge(scheme, parameters);
    }
}
