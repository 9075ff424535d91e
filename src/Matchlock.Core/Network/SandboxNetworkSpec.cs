using System.Net;

namespace Matchlock.Core.Network;

/// <summary>
/// The sandbox's network as the user asked for it (the <c>run</c> network flags, docs/COMPATIBILITY.md
/// "Network policy"): raw enough to be written by the CLI and the SDKs alike, checked by
/// <see cref="Validate"/>. Secrets stay in their <c>NAME[=VALUE]@hosts</c> form here: they are
/// resolved (values from the environment) only by the proxy that holds them, never stored.
/// </summary>
public sealed record SandboxNetworkSpec
{
    /// <summary>Host globs the guest may reach (<c>--allow-host</c>; comma lists already split).</summary>
    public IReadOnlyList<string> AllowHosts { get; init; } = [];

    /// <summary>
    /// Raw TCP permissions (<c>--allow-tcp HOST:PORT</c>; comma lists already split): connections that
    /// are neither HTTP nor TLS may go to those ports of those hosts, decided by the name the sandbox's
    /// DNS gave out for the address. Any entry turns interception on.
    /// </summary>
    public IReadOnlyList<string> AllowTcp { get; init; } = [];

    /// <summary><c>--secret NAME[=VALUE]@host1,host2</c> specs, as given.</summary>
    public IReadOnlyList<string> Secrets { get; init; } = [];

    /// <summary>
    /// Placeholders chosen by the caller, by secret name (the SDKs' <c>add_secret_with_placeholder</c>);
    /// the other secrets get random <c>SANDBOX_SECRET_…</c> ones.
    /// </summary>
    public IReadOnlyDictionary<string, string> SecretPlaceholders { get; init; } = new Dictionary<string, string>();

    /// <summary><c>--add-host host:ip</c>: answered by our DNS and allowed even when private.</summary>
    public IReadOnlyList<KeyValuePair<string, IPAddress>> AddHosts { get; init; } = [];

    /// <summary>Upstream resolvers our DNS responder asks (<c>--dns-servers</c>); empty: the host's resolver.</summary>
    public IReadOnlyList<IPAddress> DnsServers { get; init; } = [];

    public int Mtu { get; init; } = 1500;

    /// <summary><c>--network-intercept</c>: intercept with an empty allow-list (hosts added at runtime).</summary>
    public bool Intercept { get; init; }

    /// <summary>
    /// Let the guest reach private, loopback-mapped and link-local addresses (the SDKs'
    /// <c>block_private_ips: false</c>). Off by default: a sandbox cannot probe the host's LAN
    /// or a cloud metadata service. <c>--add-host</c> mappings are reachable either way.
    /// </summary>
    public bool AllowPrivate { get; init; }

    /// <summary>Extra CA (PEM) trusted for upstream TLS (<c>--upstream-ca</c>): corporate proxies, test servers.</summary>
    public string? UpstreamCaFile { get; init; }

    /// <summary>Rule-based hooks the proxy applies (docs/COMPATIBILITY.md "Hook rules"); any rule turns interception on.</summary>
    public IReadOnlyList<Network.Policy.HookRule> Hooks { get; init; } = [];

    /// <summary>
    /// How long a guest connection may take to send a complete HTTP request line or a TLS ClientHello
    /// before the proxy closes it (it is never relayed unseen instead). Default 30 s.
    /// </summary>
    public TimeSpan FirstByteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Interception is on with any allow-list entry, raw TCP rule, secret, hook or <see cref="Intercept"/>.</summary>
    public bool Intercepting => Intercept || AllowHosts.Count > 0 || AllowTcp.Count > 0 || Secrets.Count > 0 || Hooks.Count > 0;

    /// <summary>Splits repeatable, comma-separated flag values into trimmed non-empty items.</summary>
    public static IReadOnlyList<string> SplitList(IEnumerable<string>? values) =>
        [.. (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))];

    /// <summary>Parses <c>host:ip</c> (the IP may be IPv6; host names have no colon).</summary>
    public static KeyValuePair<string, IPAddress> ParseAddHost(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !IPAddress.TryParse(value[(colon + 1)..].Trim('[', ']'), out var address))
        {
            throw new ArgumentException($"invalid add-host mapping \"{value}\": --add-host must be HOST:IP, e.g. api.internal:10.0.0.5");
        }

        return new(value[..colon], address);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the flag.</summary>
    public void Validate()
    {
        if (Mtu is < 576 or > 65535)
        {
            throw new ArgumentException($"--mtu must be between 576 and 65535; got {Mtu}");
        }

        if (UpstreamCaFile is { } ca && !File.Exists(ca))
        {
            throw new ArgumentException($"--upstream-ca \"{ca}\" does not exist");
        }

        foreach (var secret in Secrets)
        {
            var at = secret.LastIndexOf('@');
            if (at <= 0 || at == secret.Length - 1)
            {
                throw new ArgumentException($"--secret \"{Redact(secret)}\" must be NAME[=VALUE]@host1,host2");
            }

            // Fully, value lookup included, so a missing variable is a usage error before anything
            // is created (its messages never contain a value).
            Checked("--secret", () => Network.Policy.SecretSpec.Parse(secret));
        }

        if (SecretPlaceholders.Count > 0)
        {
            var specs = Secrets.Select(s => Network.Policy.SecretSpec.Parse(s)).ToList();
            if (SecretPlaceholders.Keys.FirstOrDefault(name => specs.All(s => s.Name != name)) is { } unknown)
            {
                throw new ArgumentException($"a placeholder is given for secret {unknown}, which is not one of the secrets");
            }

            Network.Policy.SandboxSecrets.Create(specs, SecretPlaceholders); // its messages name secrets, never values
        }

        Checked("--allow-host", () => Network.Policy.HostPattern.ParseList(AllowHosts));
        Checked("--allow-tcp", () => Network.Policy.TcpRule.ParseList(AllowTcp));
        foreach (var (name, _) in AddHosts)
        {
            if (!Network.Policy.HostName.TryParse(name, out _, out var why))
            {
                throw new ArgumentException($"invalid add-host mapping: --add-host {name}: {why}");
            }
        }

        if (FirstByteTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"the first-byte timeout must be positive; got {FirstByteTimeout}");
        }
    }

    /// <summary>Runs a parser and turns its <see cref="FormatException"/> into a usage error naming the flag.</summary>
    private static void Checked(string flag, Func<object> parse)
    {
        try
        {
            parse();
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message.Contains(flag, StringComparison.Ordinal) ? e.Message : $"{flag}: {e.Message}", e);
        }
    }

    /// <summary>A secret spec with any value replaced, for messages.</summary>
    public static string Redact(string secret)
    {
        var equals = secret.IndexOf('=', StringComparison.Ordinal);
        var at = secret.LastIndexOf('@');
        return equals > 0 && (at < 0 || equals < at) ? secret[..equals] + "=***" + (at > equals ? secret[at..] : "") : secret;
    }
}
