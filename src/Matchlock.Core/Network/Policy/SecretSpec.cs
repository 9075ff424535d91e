namespace Matchlock.Core.Network.Policy;

/// <summary>
/// A secret the guest may use only as a placeholder (<c>--secret NAME[=VALUE]@host1,host2</c>): the
/// proxy puts <see cref="Value"/> in place of the placeholder, in requests to <see cref="Hosts"/> only.
/// </summary>
/// <remarks>
/// A class and not a record on purpose: a record's generated <c>ToString</c> would print the value.
/// <see cref="ToString"/> prints the name and hosts only; the value never leaves this object except
/// into an upstream request to a matching host.
/// </remarks>
public sealed class SecretSpec
{
    public SecretSpec(string name, string value, IReadOnlyList<HostPattern> hosts)
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
    }

    /// <summary>The environment variable name the guest sees (holding the placeholder).</summary>
    public string Name { get; }

    /// <summary>The real value. Never log, print or put in an exception message.</summary>
    public string Value { get; }

    public IReadOnlyList<HostPattern> Hosts { get; }

    /// <summary>
    /// Parses <c>NAME[=VALUE]@host1,host2</c>. Without <c>=VALUE</c> the value comes from the host
    /// environment variable NAME (through <paramref name="environment"/>, default the process's).
    /// The last '@' separates the hosts, so values may contain '@'.
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
        var hosts = HostPattern.ParseList([argument[(at + 1)..]]);
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

        return new SecretSpec(name, value, hosts);
    }

    public override string ToString() => $"{Name}@{string.Join(",", Hosts)}";

    private static bool IsValidName(string name) =>
        !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
