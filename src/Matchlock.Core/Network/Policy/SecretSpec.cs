namespace Matchlock.Core.Network.Policy;

/// <summary>
/// A secret the guest may use only as a placeholder (<c>--secret NAME[=VALUE]@host1,host2</c>): the
/// proxy puts <see cref="Value"/> in place of the placeholder, in requests to <see cref="Hosts"/> only,
/// and only over TLS — unless a host is given as <c>http://HOST</c>, which also allows cleartext HTTP
/// to that host (<see cref="CleartextHosts"/>; a value sent in clear can be read on the way).
/// </summary>
/// <remarks>
/// A class and not a record on purpose: a record's generated <c>ToString</c> would print the value.
/// <see cref="ToString"/> prints the name and hosts only; the value never leaves this object except
/// into an upstream request to a matching host.
/// </remarks>
public sealed class SecretSpec
{
    public SecretSpec(string name, string value, IReadOnlyList<HostPattern> hosts, IReadOnlyList<HostPattern>? cleartextHosts = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(hosts);
        if (!IsValidName(name))
        {
            throw new FormatException($"secret name '{name}' is not a valid environment variable name (letters, digits and '_', not starting with a digit)");
        }

        if (hosts.Count == 0)
        {
            throw new FormatException($"secret {name} names no hosts; use --secret {name}@host1,host2");
        }

        Name = name;
        Value = value;
        Hosts = hosts;
        CleartextHosts = cleartextHosts ?? [];
        if (CleartextHosts.Any(c => !hosts.Contains(c)))
        {
            throw new FormatException($"secret {name}: every cleartext (http://) host must also be one of its hosts");
        }
    }

    /// <summary>The environment variable name the guest sees (holding the placeholder).</summary>
    public string Name { get; }

    /// <summary>The real value. Never log, print or put in an exception message.</summary>
    public string Value { get; }

    public IReadOnlyList<HostPattern> Hosts { get; }

    /// <summary>The hosts declared as <c>http://HOST</c>: the secret may also go to them over cleartext HTTP.</summary>
    public IReadOnlyList<HostPattern> CleartextHosts { get; }

    /// <summary>Whether the secret may be sent to <paramref name="host"/> in a request that is not protected by TLS.</summary>
    public bool AllowsCleartext(HostName host) => CleartextHosts.Any(p => p.Matches(host));

    /// <summary>
    /// Parses <c>NAME[=VALUE]@host1,host2</c>. Without <c>=VALUE</c> the value comes from the host
    /// environment variable NAME (through <paramref name="environment"/>, default the process's).
    /// The last '@' separates the hosts, so values may contain '@'. A host written <c>http://HOST</c>
    /// also allows cleartext HTTP to it; <c>https://HOST</c> is the same as <c>HOST</c>.
    /// </summary>
    /// <exception cref="FormatException">Malformed, or the environment variable is not set; the message never contains a value.</exception>
    public static SecretSpec Parse(string argument, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(argument);
        var at = argument.LastIndexOf('@');
        if (at <= 0)
        {
            var shownName = argument.Split('=', 2)[0];
            throw new FormatException($"--secret {shownName}: expected NAME[=VALUE]@host1,host2 (the hosts the secret may be sent to are required)");
        }

        var left = argument[..at];
        var (hosts, cleartext) = ParseHosts(argument[(at + 1)..]);
        var equals = left.IndexOf('=', StringComparison.Ordinal);
        var name = equals < 0 ? left : left[..equals];
        string value;
        if (equals < 0)
        {
            value = (environment ?? Environment.GetEnvironmentVariable)(name)
                ?? throw new FormatException($"--secret {name} has no value and the environment variable {name} is not set; set it or pass {name}=VALUE");
        }
        else
        {
            value = left[(equals + 1)..];
        }

        if (value.Length == 0)
        {
            throw new FormatException($"--secret {name}: the value is empty");
        }

        return new SecretSpec(name, value, hosts, cleartext);
    }

    /// <summary>
    /// Parses a secret's host list: comma-separated patterns, each optionally prefixed with
    /// <c>http://</c> (cleartext allowed) or <c>https://</c>; a trailing <c>/</c> is ignored.
    /// </summary>
    public static (IReadOnlyList<HostPattern> Hosts, IReadOnlyList<HostPattern> Cleartext) ParseHosts(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var hosts = new List<HostPattern>();
        var cleartext = new List<HostPattern>();
        foreach (var item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var text = item;
            var plain = false;
            if (text.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
            {
                plain = true;
                text = text["http://".Length..];
            }
            else if (text.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            {
                text = text["https://".Length..];
            }

            var pattern = HostPattern.Parse(text.TrimEnd('/'));
            if (!hosts.Contains(pattern))
            {
                hosts.Add(pattern);
            }

            if (plain && !cleartext.Contains(pattern))
            {
                cleartext.Add(pattern);
            }
        }

        return (hosts, cleartext);
    }

    public override string ToString() =>
        $"{Name}@{string.Join(",", Hosts.Select(h => CleartextHosts.Contains(h) ? "http://" + h.Value : h.Value))}";

    private static bool IsValidName(string name) =>
        !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
