namespace Matchlock.Core.Network.Policy;

/// <summary>When a hook rule runs: before the request goes upstream, or after the response headers arrive.</summary>
public enum HookPhase
{
    Before,
    After,
}

/// <summary>
/// What a matching rule does. <see cref="Allow"/> lets the request through and stops evaluating
/// later rules of the same phase; <see cref="Block"/> refuses it (403); <see cref="Mutate"/> applies
/// the rule's edits and goes on to the next rule.
/// </summary>
public enum HookAction
{
    Allow,
    Block,
    Mutate,
}

/// <summary>One find/replace pair applied to response bodies (per <c>data:</c> line for SSE).</summary>
public sealed record BodyReplacement(string Find, string Replace);

/// <summary>
/// One network hook rule (docs/COMPATIBILITY.md "Hook rules"). Rules are evaluated in order per phase.
/// Empty <see cref="Hosts"/> / <see cref="Methods"/> match everything. <see cref="Path"/> is a glob
/// when it contains <c>*</c> (<c>*</c> matches any characters, '/' included, over the whole path) and
/// a prefix otherwise (<c>/v1</c> matches <c>/v1</c> and <c>/v1/chat</c>, not <c>/v10</c>).
/// </summary>
public sealed record HookRule
{
    public string? Name { get; init; }

    public HookPhase Phase { get; init; }

    public HookAction Action { get; init; }

    public IReadOnlyList<HostPattern> Hosts { get; init; } = [];

    public IReadOnlyList<string> Methods { get; init; } = [];

    public string? Path { get; init; }

    // Before phase edits.
    public IReadOnlyDictionary<string, string> SetHeaders { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string> DeleteHeaders { get; init; } = [];

    public IReadOnlyDictionary<string, string> SetQuery { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string> DeleteQuery { get; init; } = [];

    public string? RewritePath { get; init; }

    // After phase edits.
    public IReadOnlyDictionary<string, string> SetResponseHeaders { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string> DeleteResponseHeaders { get; init; } = [];

    public IReadOnlyList<BodyReplacement> BodyReplacements { get; init; } = [];

    /// <summary>
    /// An SDK-side callback this rule calls (the SDKs' <c>callback_id</c>, <c>network_hook_N</c>):
    /// its answer may allow, block or change the request or response. Without <see cref="Callback"/>
    /// set the rule fails closed.
    /// </summary>
    public string? CallbackId { get; init; }

    /// <summary>How long the callback may take; past it the request is blocked. Null: 5 s.</summary>
    public TimeSpan? CallbackTimeout { get; init; }

    /// <summary>Calls the SDK's hook for <see cref="CallbackId"/> (set by whoever serves the SDK: the rpc server).</summary>
    public INetworkHookCallback? Callback { get; init; }

    /// <summary>Whether the rule changes anything (a request or response edit).</summary>
    public bool HasEdits =>
        SetHeaders.Count > 0 || DeleteHeaders.Count > 0 || SetQuery.Count > 0 || DeleteQuery.Count > 0 || RewritePath is not null
        || SetResponseHeaders.Count > 0 || DeleteResponseHeaders.Count > 0 || BodyReplacements.Count > 0;

    /// <summary>The name used in events: <see cref="Name"/>, else <c>hook_N</c> by position.</summary>
    internal string DisplayName(int index) => Name ?? $"hook_{index}";

    /// <summary>Whether this rule applies to a request.</summary>
    public bool Matches(HostName host, string method, string path)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (Hosts.Count > 0 && !Hosts.Any(h => h.Matches(host)))
        {
            return false;
        }

        if (Methods.Count > 0 && !Methods.Any(m => string.Equals(m, method, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        return Path is null || PathMatches(Path, path);
    }

    internal static bool PathMatches(string pattern, string path)
    {
        if (!pattern.Contains('*'))
        {
            return path.StartsWith(pattern, StringComparison.Ordinal) &&
                   (path.Length == pattern.Length || pattern.EndsWith('/') || path[pattern.Length] == '/');
        }

        return Glob(pattern, path);
    }

    private static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        var star = pattern.IndexOf('*');
        if (star < 0)
        {
            return pattern.SequenceEqual(text);
        }

        if (!text.StartsWith(pattern[..star]))
        {
            return false;
        }

        var rest = pattern[(star + 1)..];
        for (var i = star; i <= text.Length; i++)
        {
            if (Glob(rest, text[i..]))
            {
                return true;
            }
        }

        return false;
    }
}
