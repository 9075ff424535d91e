namespace Matchlock.Sdk;

/// <summary>When a network rule runs.</summary>
public enum NetworkHookPhase
{
    /// <summary>Before the request goes upstream: it can block it or change headers, query and path.</summary>
    Before,

    /// <summary>After the upstream answered: it can change the response's headers and body.</summary>
    After,
}

/// <summary>What a network rule does with a matching request.</summary>
public enum NetworkHookAction
{
    /// <summary>Let it through (with the rule's mutations, if any).</summary>
    Allow,

    /// <summary>Refuse it: nothing is sent upstream.</summary>
    Block,

    /// <summary>Apply the rule's mutations.</summary>
    Mutate,
}

/// <summary>
/// A network interception rule. Without <see cref="Hook"/> it is static: the host applies it.
/// With <see cref="Hook"/> the host asks this process for each matching request (over a UNIX
/// socket the SDK serves); a hook that throws or answers late blocks the request.
/// </summary>
public sealed record NetworkHookRule
{
    /// <summary>A name for logs.</summary>
    public string? Name { get; init; }

    /// <summary>When it runs; null means <see cref="NetworkHookPhase.Before"/> on the server.</summary>
    public NetworkHookPhase? Phase { get; init; }

    /// <summary>What it does; null with mutations means mutate. A callback rule may only leave it null or <see cref="NetworkHookAction.Allow"/>.</summary>
    public NetworkHookAction? Action { get; init; }

    /// <summary>Host globs it matches (none: all).</summary>
    public IReadOnlyList<string> Hosts { get; init; } = [];

    /// <summary>HTTP methods it matches (none: all).</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>A path glob it matches.</summary>
    public string? Path { get; init; }

    /// <summary>Request headers to set (before).</summary>
    public IReadOnlyDictionary<string, string>? SetHeaders { get; init; }

    /// <summary>Request headers to remove (before).</summary>
    public IReadOnlyList<string> DeleteHeaders { get; init; } = [];

    /// <summary>Query parameters to set (before).</summary>
    public IReadOnlyDictionary<string, string>? SetQuery { get; init; }

    /// <summary>Query parameters to remove (before).</summary>
    public IReadOnlyList<string> DeleteQuery { get; init; } = [];

    /// <summary>A new request path (before).</summary>
    public string? RewritePath { get; init; }

    /// <summary>Response headers to set (after).</summary>
    public IReadOnlyDictionary<string, string>? SetResponseHeaders { get; init; }

    /// <summary>Response headers to remove (after).</summary>
    public IReadOnlyList<string> DeleteResponseHeaders { get; init; } = [];

    /// <summary>Literal body replacements (after); on <c>text/event-stream</c> applied to each <c>data:</c> line as it streams.</summary>
    public IReadOnlyList<BodyReplacement> BodyReplacements { get; init; } = [];

    /// <summary>How long the host waits for the callback (sent as <c>timeout_ms</c>; also the token's deadline here).</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// Answers each matching request in this process. Return null for no change. Throwing makes
    /// the host block the request (fail closed).
    /// </summary>
    public Func<NetworkHookRequest, CancellationToken, ValueTask<NetworkHookResult?>>? Hook { get; init; }
}

/// <summary>A literal replacement in a response body.</summary>
public sealed record BodyReplacement(string Find, string Replace);

/// <summary>The request (and, after, the response) a callback hook is asked about.</summary>
public sealed record NetworkHookRequest
{
    /// <summary>The rule's phase.</summary>
    public required NetworkHookPhase Phase { get; init; }

    /// <summary>The upstream host.</summary>
    public required string Host { get; init; }

    /// <summary>The HTTP method.</summary>
    public required string Method { get; init; }

    /// <summary>The request path.</summary>
    public required string Path { get; init; }

    /// <summary>The query parameters.</summary>
    public IReadOnlyDictionary<string, string> Query { get; init; } = new Dictionary<string, string>();

    /// <summary>The request headers.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> RequestHeaders { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The response status (after).</summary>
    public int? StatusCode { get; init; }

    /// <summary>The response headers (after).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? ResponseHeaders { get; init; }

    /// <summary>Whether the response is a server-sent event stream (after).</summary>
    public bool IsServerSentEvents { get; init; }
}

/// <summary>A callback hook's decision.</summary>
public sealed record NetworkHookResult
{
    /// <summary>Block the request (before) or the response (after).</summary>
    public static NetworkHookResult Block { get; } = new() { Action = NetworkHookAction.Block };

    /// <summary>What to do; null with mutations means mutate.</summary>
    public NetworkHookAction? Action { get; init; }

    /// <summary>Changes to the outgoing request (before).</summary>
    public NetworkRequestMutation? Request { get; init; }

    /// <summary>Changes to the response (after).</summary>
    public NetworkResponseMutation? Response { get; init; }
}

/// <summary>Changes to an outgoing request.</summary>
public sealed record NetworkRequestMutation
{
    /// <summary>Replaces the whole header map (Host excepted); null keeps the headers.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? Headers { get; init; }

    /// <summary>Replaces the whole query; null keeps it.</summary>
    public IReadOnlyDictionary<string, string>? Query { get; init; }

    /// <summary>A new path; null keeps it.</summary>
    public string? Path { get; init; }
}

/// <summary>Changes to a response.</summary>
public sealed record NetworkResponseMutation
{
    /// <summary>Replaces the whole response header map; null keeps it.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? Headers { get; init; }

    /// <summary>Literal body replacements.</summary>
    public IReadOnlyList<BodyReplacement> BodyReplacements { get; init; } = [];

    /// <summary>Replaces the whole body; null keeps it.</summary>
    public ReadOnlyMemory<byte>? SetBody { get; init; }
}
