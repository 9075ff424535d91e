using System.Security.Cryptography;

namespace Matchlock.Core.Network.Policy;

/// <summary>
/// The secrets of one sandbox with their placeholders (<c>SANDBOX_SECRET_</c> + 32 hex, random per
/// secret per sandbox). The guest's environment gets <c>NAME=placeholder</c>; the proxy swaps
/// placeholders for values on the way out, only for the hosts each secret names.
/// </summary>
public sealed class SandboxSecrets
{
    /// <summary>The prefix every placeholder starts with.</summary>
    public const string PlaceholderPrefix = "SANDBOX_SECRET_";

    /// <summary>Prefix plus 32 hex characters.</summary>
    public const int PlaceholderLength = 15 + 32;

    /// <summary>Shortest placeholder a caller may choose: a shorter one would turn up in ordinary requests.</summary>
    public const int MinCustomPlaceholderLength = 8;

    private readonly Dictionary<string, Entry> _byPlaceholder;
    private readonly Entry[] _custom; // placeholders the caller chose, not of our fixed form

    private SandboxSecrets(List<Entry> entries)
    {
        Entries = entries;
        _byPlaceholder = entries.ToDictionary(e => e.Placeholder, StringComparer.Ordinal);
        _custom = [.. entries.Where(e => !IsOurForm(e.Placeholder))];
    }

    private static bool IsOurForm(string placeholder) =>
        placeholder.Length == PlaceholderLength && placeholder.StartsWith(PlaceholderPrefix, StringComparison.Ordinal);

    public static SandboxSecrets Empty { get; } = new([]);

    /// <summary>One secret and its placeholder. <see cref="ToString"/> shows no value.</summary>
    public sealed class Entry
    {
        internal Entry(SecretSpec spec, string placeholder)
        {
            Spec = spec;
            Placeholder = placeholder;
        }

        public SecretSpec Spec { get; }

        public string Name => Spec.Name;

        public string Placeholder { get; }

        public override string ToString() => $"{Spec} as {Placeholder}";
    }

    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>
    /// Assigns each secret its placeholder: the one in <paramref name="placeholders"/> for its name
    /// (the SDKs' <c>add_secret_with_placeholder</c>), else a fresh random one.
    /// </summary>
    /// <exception cref="ArgumentException">Two secrets share a name; or a chosen placeholder is
    /// shorter than <see cref="MinCustomPlaceholderLength"/>, not printable ASCII without spaces, shared,
    /// part of another placeholder, or contains the secret's value.</exception>
    public static SandboxSecrets Create(IEnumerable<SecretSpec> secrets, IReadOnlyDictionary<string, string>? placeholders = null)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        var list = secrets.ToList();
        var duplicate = list.GroupBy(s => s.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"secret {duplicate.Key} is given more than once", nameof(secrets));
        }

        var entries = list.Select(s => new Entry(s, placeholders is not null && placeholders.TryGetValue(s.Name, out var chosen)
            ? CheckChosen(s, chosen)
            : PlaceholderPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)))).ToList();
        foreach (var entry in entries)
        {
            if (entries.FirstOrDefault(o => o != entry && o.Placeholder.Contains(entry.Placeholder, StringComparison.Ordinal)) is { } other)
            {
                throw new ArgumentException($"the placeholder of secret {entry.Name} is part of secret {other.Name}'s; choose placeholders that do not overlap", nameof(placeholders));
            }
        }

        return new SandboxSecrets(entries);
    }

    private static string CheckChosen(SecretSpec secret, string placeholder)
    {
        if (placeholder.Length < MinCustomPlaceholderLength || placeholder.Any(c => c is <= ' ' or > '~'))
        {
            throw new ArgumentException(
                $"the placeholder of secret {secret.Name} must be at least {MinCustomPlaceholderLength} printable ASCII characters without spaces (it is found and replaced in requests)", nameof(placeholder));
        }

        return placeholder.Contains(secret.Value, StringComparison.Ordinal)
            ? throw new ArgumentException($"the placeholder of secret {secret.Name} contains the secret's value; the guest would see it", nameof(placeholder))
            : placeholder;
    }

    /// <summary>The variables the guest's environment gets: NAME → placeholder.</summary>
    public IReadOnlyDictionary<string, string> GuestEnvironment =>
        Entries.ToDictionary(e => e.Name, e => e.Placeholder, StringComparer.Ordinal);

    /// <summary>Every placeholder of ours that occurs in <paramref name="text"/> (each once).</summary>
    public void FindPlaceholders(ReadOnlySpan<char> text, HashSet<Entry> found)
    {
        ArgumentNullException.ThrowIfNull(found);
        if (_byPlaceholder.Count == 0)
        {
            return;
        }

        // Placeholders the caller chose have no common prefix: each is looked for on its own.
        foreach (var entry in _custom)
        {
            if (text.Contains(entry.Placeholder, StringComparison.Ordinal))
            {
                found.Add(entry);
            }
        }

        while (true)
        {
            var i = text.IndexOf(PlaceholderPrefix, StringComparison.Ordinal);
            if (i < 0)
            {
                return;
            }

            if (text.Length - i >= PlaceholderLength &&
                _byPlaceholder.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(text.Slice(i, PlaceholderLength), out var entry))
            {
                found.Add(entry);
            }

            text = text[(i + PlaceholderPrefix.Length)..];
        }
    }

    /// <summary>
    /// Every placeholder of ours in one header: in its value, its name, and — for
    /// <c>Authorization</c> / <c>Proxy-Authorization</c> with the Basic scheme — inside the
    /// base64-encoded <c>user:password</c> (padded or not), where clients put API keys too.
    /// </summary>
    public void FindPlaceholdersInHeader(string name, string? value, HashSet<Entry> found)
    {
        ArgumentNullException.ThrowIfNull(name);
        FindPlaceholders(name, found);
        if (value is null)
        {
            return;
        }

        FindPlaceholders(value, found);
        if (IsCredentialsHeader(name) && TryDecodeBasic(value, out var decoded, out _))
        {
            FindPlaceholders(decoded, found);
        }
    }

    /// <summary>Replaces the placeholders of <paramref name="entries"/> in <paramref name="text"/> with their values.</summary>
    internal static string Substitute(string text, IEnumerable<Entry> entries)
    {
        foreach (var e in entries)
        {
            text = text.Replace(e.Placeholder, e.Spec.Value, StringComparison.Ordinal);
        }

        return text;
    }

    /// <summary>
    /// <see cref="Substitute"/> for one header value, also inside Basic credentials (re-encoded
    /// with the padding style the client used).
    /// </summary>
    internal static string SubstituteHeader(string name, string value, IReadOnlyCollection<Entry> entries)
    {
        var text = Substitute(value, entries);
        if (IsCredentialsHeader(name) && TryDecodeBasic(text, out var decoded, out var padded))
        {
            var replaced = Substitute(decoded, entries);
            if (!string.Equals(replaced, decoded, StringComparison.Ordinal))
            {
                var encoded = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(replaced));
                text = text[..text.IndexOf(' ', StringComparison.Ordinal)] + " " + (padded ? encoded : encoded.TrimEnd('='));
            }
        }

        return text;
    }

    private static bool IsCredentialsHeader(string name) =>
        name.Equals("Authorization", StringComparison.OrdinalIgnoreCase) || name.Equals("Proxy-Authorization", StringComparison.OrdinalIgnoreCase);

    /// <summary>Decodes <c>Basic &lt;base64&gt;</c> (scheme case-insensitive, padding optional) as UTF-8.</summary>
    private static bool TryDecodeBasic(string value, out string decoded, out bool padded)
    {
        decoded = string.Empty;
        padded = false;
        var trimmed = value.AsSpan().Trim();
        if (trimmed.Length < 6 || !trimmed[..6].Equals("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var token = trimmed[6..].Trim().ToString();
        padded = token.EndsWith('=');
        var unpadded = token.TrimEnd('=');
        var normalized = unpadded + new string('=', (4 - (unpadded.Length % 4)) % 4);
        var bytes = new byte[normalized.Length];
        if (!Convert.TryFromBase64String(normalized, bytes, out var n))
        {
            return false;
        }

        decoded = System.Text.Encoding.UTF8.GetString(bytes, 0, n);
        return true;
    }
}
